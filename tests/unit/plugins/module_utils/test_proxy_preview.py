# -*- coding: utf-8 -*-
"""The preview route (issue 13): rendering, bad input, and what a switch records. HAProxy itself answering by the
header, and 0 of 2,000 normal requests reaching the preview color, is tests/integration/test_proxy_preview.py."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import Preview, asked_preview

ROUTE = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"))


def frontend(text):
    return text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()


def test_a_route_without_a_preview_renders_as_before():
    text, _generation = render([ROUTE], ProxySettings())
    assert "preview" not in text
    assert "preview" not in ROUTE.as_dict(), "a route recorded before previews keeps its document"


def test_the_other_color_answers_requests_naming_it_and_any_other_name_gets_no_preview_release():
    route = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(header="X-Flow-Color"))
    text, _generation = render([route], ProxySettings())
    assert frontend(text)[-6:] == [
        "    acl r0_preview req.hdr(X-Flow-Color) -m found",
        "    acl r0_preview_live req.hdr(X-Flow-Color) -m str -i blue",
        "    acl r0_preview_green req.hdr(X-Flow-Color) -m str -i green",
        "    use_backend be_books_green if r0_path r0_preview r0_preview_green { nbsrv(be_books_green) gt 0 }",
        "    use_backend be_dockerflow_no_preview if r0_path r0_preview !r0_preview_live",
        "    use_backend be_books_blue if r0_path",
    ]
    assert "\nbackend be_dockerflow_no_preview\n    http-request return status 503 content-type text/plain string " \
           "'no preview release'\n" in text


def test_a_cookie_asks_as_the_header_does_and_an_allow_list_limits_both_to_those_addresses():
    route = Route(service="books", color="green", domain="books.example.com", colors=("blue", "green"),
                  preview=Preview("X-Preview", "flow-color", ("10.0.0.0/8", "192.168.1.7")))
    lines = frontend(render([route], ProxySettings())[0])
    for fetch in ("req.hdr(X-Preview)", "req.cook(flow-color)"):  # an ACL declared twice matches when either does
        assert "    acl r0_preview %s -m found" % fetch in lines
        assert "    acl r0_preview_blue %s -m str -i blue" % fetch in lines
    assert "    acl r0_preview_from src 10.0.0.0/8 192.168.1.7" in lines
    assert "    use_backend be_books_blue if r0_host r0_preview r0_preview_from r0_preview_blue " \
           "{ nbsrv(be_books_blue) gt 0 }" in lines
    assert lines[-1] == "    use_backend be_books_green if r0_host"


@pytest.mark.parametrize("header, cookie, allow, message", [
    ("X Flow", None, (), "preview_header='X Flow' is not a name of letters, digits and '-' (for example X-Flow-Color)."),
    ("X-Flow-Color\nhttp-request deny", None, (), "preview_header="),
    ("-X", None, (), "preview_header='-X' is not a name"),
    ("X-Flow-Color\n", None, (), "preview_header='X-Flow-Color\\n' is not a name"),  # what re's $ lets through
    ("X-Flow-Color", None, ("10.0.0.0/8\n",), "preview_allow entry '10.0.0.0/8\\n' is not an IP address"),
    (None, "a;b", (), "preview_cookie='a;b' is not a name"),
    ("X-Flow-Color", None, ("10.0.0.0/8 0.0.0.0/0",), "preview_allow entry '10.0.0.0/8 0.0.0.0/0' is not an IP address "
                                                      "or network (for example 10.0.0.0/8)."),
    ("X-Flow-Color", None, ("office",), "preview_allow entry 'office' is not an IP address or network"),
])
def test_bad_preview_input_is_one_line_naming_the_parameter(header, cookie, allow, message):
    with pytest.raises(FlowError) as raised:
        asked_preview(header, cookie, allow, None)
    assert raised.value.msg.startswith(message) and "\n" not in raised.value.msg


def test_the_recorded_preview_is_kept_unless_asked_otherwise():
    recorded = {"header": "X-Flow-Color", "cookie": None, "allow": ["10.0.0.0/8"]}
    kept = Preview(header="X-Flow-Color", allow=("10.0.0.0/8",))
    assert asked_preview(None, None, None, recorded) == kept
    assert asked_preview("", None, None, recorded) is None, "an empty header turns it off"
    assert asked_preview("X-Canary", None, None, recorded) == Preview("X-Canary", None, ("10.0.0.0/8",))
    assert asked_preview(None, "flow", None, recorded) == Preview("X-Flow-Color", "flow", ("10.0.0.0/8",))
    assert asked_preview("", "flow", None, recorded) == Preview(None, "flow", ("10.0.0.0/8",)), "by cookie only"
    assert asked_preview(None, None, ["127.0.0.0/8"], recorded) == Preview("X-Flow-Color", None, ("127.0.0.0/8",))
    assert asked_preview(None, None, [], recorded) == Preview("X-Flow-Color"), "an empty list: any address"
    assert asked_preview(None, None, None, None) is None
    with pytest.raises(FlowError, match=r"^preview_allow needs preview_header or preview_cookie: this route has no "
                                        r"preview\.$"):
        asked_preview(None, None, ["10.0.0.0/8"], None)
    route = Route.from_dict("books", dict(ROUTE.as_dict(), preview=recorded))
    assert route.preview == kept and route.as_dict()["preview"] == recorded
