# -*- coding: utf-8 -*-
"""The ACME challenges every proxy node answers from Consul: the rules, the backend, the values that may reach them."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import acme_challenges
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import live_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import without_hashes

TOKEN = "0123456789abcdef-0123456789ABCDEF_xyz"


def test_a_token_maps_to_its_key_and_nothing_else_does():
    assert acme_challenges.challenge_key(TOKEN) == "dockerflow/proxy/acme-challenges/" + TOKEN
    for bad in ("", "../locks/web", "a/b", "a.b", "a b", "a%2F", "x" * 257, None):
        with pytest.raises(FlowError, match=r"^token=.* is not valid: an ACME token is"):
            acme_challenges.challenge_key(bad)


def test_the_backend_asks_consul_for_the_token_of_the_path_and_nothing_of_the_client():
    lines = acme_challenges.backend_lines("127.0.0.1:8500", None)
    assert lines[1:] == [
        "backend be_dockerflow_acme",
        "    http-request set-path /v1/kv/dockerflow/proxy/acme-challenges/%[path,field(4,/)]",
        "    http-request set-query raw",
        "    http-request del-header Authorization",
        "    http-request del-header X-Consul-Token",
        "    http-request del-header Cookie",
        "    http-response del-header X-Consul- -m beg",
        "    server consul 127.0.0.1:8500",
    ]
    with_token = acme_challenges.backend_lines("[::1]:8501", "3f7c-aa.b_c")
    assert "    http-request set-header X-Consul-Token 3f7c-aa.b_c" in with_token
    assert with_token[-1] == "    server consul [::1]:8501"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:", ":8500", "127.0.0.1:port", "a b:8500",
                                     "127.0.0.1:70000", "http://127.0.0.1:8500"])
def test_a_bad_consul_address_fails_in_one_line_naming_the_option(address):
    with pytest.raises(FlowError, match=r"^proxy_acme_consul=") as info:
        ProxySettings(acme_consul=address).validated()
    assert "\n" not in str(info.value)


def test_a_bad_token_fails_without_repeating_it():
    with pytest.raises(FlowError, match=r"^proxy_acme_consul_token is not valid") as info:
        ProxySettings(acme_consul_token="s3cret\n    http-request deny").validated()
    assert "s3cret" not in str(info.value)


def test_every_render_answers_challenges_first_and_routes_everything_else():
    text = render([Route(service="wk", color="blue", paths=("/.well-known/",))], ProxySettings())[0]
    frontend = text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert frontend[1:3] == acme_challenges.frontend_rule_lines(), "before any other http-request rule"
    use_backends = [line for line in frontend if line.startswith("    use_backend ")]
    assert use_backends == ["    use_backend be_dockerflow_acme if acme_challenge { method GET }",
                            "    use_backend %s if r0_path" % live_backend("wk")]


def test_a_diff_never_shows_the_token():
    text = render([], ProxySettings(acme_consul_token="old-secret"))[0]
    result = without_hashes({"diff": {"before": text, "after": text.replace("old-secret", "new-secret")}})
    assert "secret" not in result["diff"]["before"] + result["diff"]["after"]
    assert "    http-request set-header X-Consul-Token ********" in result["diff"]["after"]
