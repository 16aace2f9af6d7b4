# -*- coding: utf-8 -*-
"""The preview route (issue 13): rendering, bad input, and what a switch records. HAProxy itself answering by the
header, and 0 of 2,000 normal requests reaching the preview color, is tests/integration/test_proxy_preview.py."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import live_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import Preview, asked_preview, without_hashes

ROUTE = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"))


def frontend(text):
    return text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()


def live_color_lines(text):
    """The trailer lines that say which color each route serves (live_map), without the generation's."""
    return [line for line in text.splitlines() if line.startswith("# live-color ") and not line.startswith("# live-color .")]


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
        "    use_backend %s if r0_path" % live_backend("books"),
    ]
    assert live_color_lines(text) == ["# live-color books blue"]
    assert "\nbackend be_dockerflow_no_preview\n    http-request return status 503 content-type text/plain string " \
           "'no preview release'\n" in text


def test_a_cookie_asks_as_the_header_does_and_an_allow_list_limits_both_to_those_addresses():
    route = Route(service="books", color="green", domain="books.example.com", colors=("blue", "green"),
                  preview=Preview("X-Preview", "flow-color", ("10.0.0.0/8", "192.168.1.7")))
    text = render([route], ProxySettings())[0]
    lines = frontend(text)
    for fetch in ("req.hdr(X-Preview)", "req.cook(flow-color)"):  # an ACL declared twice matches when either does
        assert "    acl r0_preview %s -m found" % fetch in lines
        assert "    acl r0_preview_blue %s -m str -i blue" % fetch in lines
    assert "    acl r0_preview_from src 10.0.0.0/8 192.168.1.7" in lines
    assert "    use_backend be_books_blue if r0_host r0_preview r0_preview_from r0_preview_blue " \
           "{ nbsrv(be_books_blue) gt 0 }" in lines
    assert lines[-1] == "    use_backend %s if r0_host" % live_backend("books")
    assert live_color_lines(text) == ["# live-color books green"]


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
    with pytest.raises(FlowError, match=r"^preview_allow needs preview_header, preview_cookie or preview_host: this route "
                                        r"has no preview\.$"):
        asked_preview(None, None, ["10.0.0.0/8"], None)
    route = Route.from_dict("books", dict(ROUTE.as_dict(), preview=recorded))
    assert route.preview == kept and route.as_dict()["preview"] == recorded


# --------------------------------------------------------------------------- preview host and basic auth

# The password "secret": `openssl passwd -6 -salt abc secret`, and a yescrypt hash as `mkpasswd -m yescrypt` gives.
HASH = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"
YESCRYPT = "$y$j9T$OoWYZHJdwsU8824SyRf4a1$lukidqT2CPoJtGhZWTr942s9tOqSfk4BY8M2PAgBzl8"


def rule_blocks(text):
    """The frontend's lines, one list a rule (the lines up to and with its last use_backend)."""
    blocks, current = [], []
    lines = frontend(text)
    for line in lines[lines.index("    default_backend be_dockerflow_none") + 1:]:
        rule = int(line.split()[1].split("_")[0][1:]) if line.startswith("    acl ") else None
        if rule is not None and rule != len(blocks):
            blocks.append(current)
            current = []
        current.append(line)
    return [*blocks, current]


def test_the_preview_host_on_a_route_of_paths_is_one_more_condition_and_ranks_as_an_exact_host():
    books = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(host="preview.example.com"))
    wildcard = Route(service="wild", color="green", domain="*.example.com", colors=("green",))
    longer = Route(service="api", color="blue", paths=("/books/api",), colors=("blue",))
    text = render([books, wildcard, longer], ProxySettings())[0]
    blocks = rule_blocks(text)
    assert blocks[0] == [
        "    acl r0_path path_beg /books",
        "    acl r0_preview_host req.hdr(host),field(1,:),lower -m str preview.example.com",
        "    use_backend be_books_green if r0_path r0_preview_host { nbsrv(be_books_green) gt 0 }",
        "    use_backend be_dockerflow_no_preview if r0_path r0_preview_host",
    ], "before *.example.com and before another service's longer path: the preview host is an exact host"
    assert blocks[1][-1] == "    use_backend %s if r1_host" % live_backend("wild")
    assert blocks[2][-1] == "    use_backend %s if r2_path" % live_backend("api")
    assert blocks[3] == ["    acl r3_path path_beg /books", "    use_backend %s if r3_path" % live_backend("books")], \
        "other hosts are untouched: the route's own rule is as without a preview host"
    assert live_color_lines(text) == ["# live-color api blue", "# live-color books blue", "# live-color wild green"]


def test_the_preview_host_takes_the_place_of_the_routes_domain():
    route = Route(service="shop", color="green", domain="shop.example.com", paths=("/cart", "/pay"),
                  colors=("blue", "green"), preview=Preview(host="preview.example.com"))
    text = render([route], ProxySettings())[0]
    blocks = rule_blocks(text)
    assert [block[-1] for block in blocks] == [
        "    use_backend be_dockerflow_no_preview if r0_path r0_preview_host",
        "    use_backend be_dockerflow_no_preview if r1_path r1_preview_host",
        "    use_backend %s if r2_path r2_host" % live_backend("shop"),
        "    use_backend %s if r3_path r3_host" % live_backend("shop"),
    ]
    assert live_color_lines(text) == ["# live-color shop green"]
    assert "    use_backend be_shop_blue if r0_path r0_preview_host { nbsrv(be_shop_blue) gt 0 }" in blocks[0]
    assert not any("r0_host" in line for line in blocks[0]), "the route's own host is not asked on the preview host"
    only_domain = Route(service="shop", color="green", domain="shop.example.com", colors=("blue", "green"),
                        preview=Preview(host="preview.example.com", allow=("10.0.0.0/8",)))
    assert rule_blocks(render([only_domain], ProxySettings())[0])[0] == [
        "    acl r0_preview_host req.hdr(host),field(1,:),lower -m str preview.example.com",
        "    acl r0_preview_from src 10.0.0.0/8",
        "    use_backend be_shop_blue if r0_preview_host r0_preview_from { nbsrv(be_shop_blue) gt 0 }",
        "    use_backend be_dockerflow_no_preview if r0_preview_host r0_preview_from",
    ]


def test_basic_auth_challenges_only_requests_asking_for_the_preview():
    route = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(header="X-Flow-Color", host="preview.example.com", auth=("alice:" + HASH, "bob:" + YESCRYPT)))
    text = render([route], ProxySettings())[0]
    host_rule, header_rule = rule_blocks(text)
    assert host_rule[2] == ("    use_backend be_dockerflow_preview_auth if r0_path r0_preview_host "
                            "!{ http_auth(preview_books) }")
    assert header_rule[4] == ("    use_backend be_dockerflow_preview_auth if r1_path r1_preview !r1_preview_live "
                              "!{ http_auth(preview_books) }"), "naming the live color asks for no preview"
    assert header_rule[-1] == "    use_backend %s if r1_path" % live_backend("books"), "normal requests are never challenged"
    assert live_color_lines(text) == ["# live-color books blue"]
    assert text.count("http_auth") == 2
    assert "\nbackend be_dockerflow_preview_auth\n    http-request auth realm preview\n" in text
    assert "\nuserlist preview_books\n    user alice password %s\n    user bob password %s\n" % (HASH, YESCRYPT) in text


def test_a_preview_without_a_host_or_auth_renders_and_records_as_before():
    route = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(header="X-Flow-Color"))
    text = render([route], ProxySettings())[0]
    assert "preview_host" not in text and "userlist" not in text and "auth" not in text
    assert route.as_dict()["preview"] == {"header": "X-Flow-Color", "cookie": None, "allow": []}


def test_host_and_auth_are_recorded_and_kept_unless_asked_otherwise():
    recorded = {"header": None, "cookie": None, "allow": [], "host": "preview.example.com", "auth": ["alice:" + HASH]}
    kept = Preview(host="preview.example.com", auth=("alice:" + HASH,))
    assert asked_preview(recorded=recorded) == kept
    assert asked_preview(None, None, None, recorded, None, None).as_dict() == recorded
    assert asked_preview(recorded=recorded, host="") is None, "an empty host turns the preview off"
    assert asked_preview(recorded=recorded, header="X-Flow-Color", host="") == Preview("X-Flow-Color",
                                                                                       auth=("alice:" + HASH,))
    assert asked_preview(recorded=recorded, auth=[]) == Preview(host="preview.example.com"), "[] turns auth off"
    assert asked_preview(recorded=recorded, host="Other.Example.COM").host == "other.example.com", "as HAProxy compares"
    assert asked_preview(recorded=recorded, auth=["bob:" + YESCRYPT]).auth == ("bob:" + YESCRYPT,)
    route = Route.from_dict("books", dict(ROUTE.as_dict(), preview=recorded))
    assert route.preview == kept and route.as_dict()["preview"] == recorded
    with pytest.raises(FlowError, match=r"^preview_auth needs preview_header, preview_cookie or preview_host: this route "
                                        r"has no preview\.$"):
        asked_preview(recorded=None, auth=["alice:" + HASH])


@pytest.mark.parametrize("host, message", [
    ("*.example.com", "preview_host='*.example.com' is not valid: use one host name like preview.example.com"),
    ("preview.example.com:8080", "preview_host='preview.example.com:8080' is not valid: use a host name"),
    ("preview example.com", "preview_host='preview example.com' is not valid"),
    ("preview.example.com\nhttp-request deny", "preview_host='preview.example.com\\nhttp-request deny' is not valid"),
    ("-preview.example.com", "preview_host='-preview.example.com' is not valid"),
])
def test_a_bad_preview_host_is_one_line_naming_it(host, message):
    with pytest.raises(FlowError) as raised:
        asked_preview(host=host)
    assert raised.value.msg.startswith(message) and "\n" not in raised.value.msg


@pytest.mark.parametrize("entries, message", [
    (["alice"], "preview_auth entry 1 is not user:hash"),
    (["secret-password"], "preview_auth entry 1 is not user:hash"),
    (["alice:secret"], "preview_auth entry 1 (user alice): the part after ':' must be a crypt hash"),
    (["alice:$6$abc$x y"], "preview_auth entry 1 (user alice): the part after ':' must be a crypt hash"),
    (["alice:$6$abc$x'y"], "preview_auth entry 1 (user alice)"),
    (["alice:$6$abc$x#y"], "preview_auth entry 1 (user alice)"),
    (["alice:$6$abc$x\n"], "preview_auth entry 1 (user alice)"),
    (["alice:$6$abcdef"], "preview_auth entry 1 (user alice)"),  # a salt without its hash
    (["alice:abNANd1rDfiNc"], "preview_auth entry 1 (user alice)"),  # DES crypt: 8 characters of the password at most
    (["alice:" + HASH, "bob smith:" + HASH], "preview_auth entry 2: the user name is not 1-64 letters"),
    (["alice:" + HASH, ":" + HASH], "preview_auth entry 2: the user name"),
    (["alice:" + HASH, "alice:" + YESCRYPT], "preview_auth entry 2: user alice is listed twice."),
])
def test_bad_auth_is_one_line_naming_preview_auth_and_never_the_hash_or_password(entries, message):
    with pytest.raises(FlowError) as raised:
        asked_preview(header="X-Flow-Color", auth=entries)
    assert raised.value.msg.startswith(message) and "\n" not in raised.value.msg, raised.value.msg
    for entry in entries:
        secret = entry.partition(":")[2] or entry
        assert secret not in raised.value.msg, "the message echoes a hash or password"
    assert "bob smith" not in raised.value.msg


def test_a_preview_host_may_not_be_a_routes_domain_nor_serve_the_same_paths_of_two_services():
    shop = Route(service="shop", color="blue", domain="shop.example.com", colors=("blue", "green"))
    books = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(host="shop.example.com"))
    with pytest.raises(FlowError, match=r"^preview_host='shop.example.com' is the service_domain of shop: use a host name "
                                        r"of its own for the preview\.$"):
        render([shop, books], ProxySettings())
    again = Route(service="again", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(host="preview.example.com"))
    other_path = Route(service="other", color="blue", paths=("/other",), colors=("blue", "green"),
                       preview=Preview(host="preview.example.com"))
    books = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(host="preview.example.com"))
    render([books, other_path], ProxySettings())  # one preview host for several services, on their own paths
    with pytest.raises(FlowError, match=r"^preview_host='preview.example.com': preview.example.com/books is already the "
                                        r"preview of service again\.$"):
        render([again, books], ProxySettings())


def test_results_show_no_hash():
    route = Route(service="books", color="blue", paths=("/books",), colors=("blue", "green"),
                  preview=Preview(host="preview.example.com", auth=("alice:" + HASH,)))
    config = render([route], ProxySettings())[0]
    result = {"diff": {"before": "", "after": config}, "routes": route.as_dict()}
    shown = without_hashes(result)
    assert HASH not in repr(shown)
    assert "\n    user alice password ********\n" in shown["diff"]["after"]
    assert shown["routes"]["preview"]["auth"] == ["alice:********"]
    assert without_hashes({"changed": False}) == {"changed": False}
