# -*- coding: utf-8 -*-
"""Canary weights in the rendered configuration and the proxy's map file (proxy_canary); the proxy taking them for
real is tests/integration/test_canary.py, and every rendering passes haproxy -c in test_haproxy_render_check.py."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import live_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import (
    DICE_LINE,
    WEIGHTS_FILE,
    Canary,
    refuse_a_serving_canary,
    runtime_weight_command,
    weights_file_text,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_routes import canary_weights

ROUTE = Route("books", "blue", paths=("/books",), colors=("blue", "green"))


def frontend(config):
    return config.split("frontend http\n")[1].split("\nbackend ")[0]


def test_a_canary_adds_the_die_and_a_rule_before_the_live_one():
    config, _generation = render([Route(**dict(vars(ROUTE), canary=Canary("green", 25)))], ProxySettings())
    lines = frontend(config).splitlines()
    assert DICE_LINE in lines and lines.index(DICE_LINE) < lines.index("    default_backend be_dockerflow_none")
    assert "    acl r0_canary str(books),map_str_int(%s,0),sub(txn.flow_dice) gt 0" % WEIGHTS_FILE in lines
    assert lines.index("    use_backend be_books_green if r0_path r0_canary { nbsrv(be_books_green) gt 0 }") < lines.index(
        "    use_backend %s if r0_path" % live_backend("books"))
    assert "\n# live-color books blue\n" in config, "the live color is the map's; the canary's is in the rule"
    assert "25" not in frontend(config), "the weight is the map file's, not the configuration's"


def test_routes_without_a_split_render_as_before():
    plain, _generation = render([ROUTE], ProxySettings())
    promoted, _generation = render([Route(**dict(vars(ROUTE), canary=Canary("blue", 100)))], ProxySettings())
    assert "flow_dice" not in plain and "canary" not in plain
    assert frontend(promoted) == frontend(plain), "a canary of the routed color splits nothing"
    assert "canary" not in ROUTE.as_dict()


def test_the_canary_is_recorded_with_the_route():
    route = Route(**dict(vars(ROUTE), canary=Canary("green", 40)))
    assert route.as_dict()["canary"] == {"color": "green", "weight": 40}
    assert Route.from_dict("books", route.as_dict()) == route


@pytest.mark.parametrize("weight", [-1, 101, "10", 1.5, True, None])
def test_a_weight_outside_0_to_100_names_the_parameter(weight):
    with pytest.raises(FlowError, match=r"^canary_weight=.* is not valid: use a whole percentage from 0 to 100"):
        Canary("green", weight).validated()


def test_the_weights_file_and_the_runtime_command():
    assert weights_file_text([("b", Canary("green", 5)), ("a", Canary("blue", 0))]) == "a 0\nb 5\n"
    assert runtime_weight_command("books", 30) == "del map %s books;add map %s books 30" % (WEIGHTS_FILE, WEIGHTS_FILE)
    documents = {
        "books": {"routes": dict(ROUTE.as_dict(), canary={"color": "green", "weight": 30}), "colors": {"blue": {}}},
        "shop": {"routes": dict(ROUTE.as_dict(), proxy="internal", canary={"color": "green", "weight": 50})},
        "news": {"routes": ROUTE.as_dict()},
    }
    assert canary_weights(documents, "dockerflow-proxy") == "books 30\n"


def test_deploy_and_stop_old_may_not_touch_a_canary_that_takes_requests():
    document = {"service": "books", "routes": {"canary": {"color": "green", "weight": 10}}}
    with pytest.raises(FlowError, match=r"^green takes 10 % of the requests of books as a canary, and a deploy would "
                                        r"replace it: refused\. Promote it or end it"):
        refuse_a_serving_canary(document, ["green"], "a deploy would replace")
    refuse_a_serving_canary(document, ["blue"], "a deploy would replace")
    refuse_a_serving_canary({"routes": {"canary": {"color": "green", "weight": 0}}}, ["green"], "stop-old would stop")
    refuse_a_serving_canary({"routes": {}}, ["green"], "stop-old would stop")
