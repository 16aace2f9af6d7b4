# -*- coding: utf-8 -*-
"""HAProxy configuration rendering: ``config_word`` validation/quoting, ``Route`` and ``render``.

The point of ``config_word`` is that nothing a user types can add or change a
directive: every value must come out as exactly one HAProxy word. Besides
examples, hypothesis feeds arbitrary text to every kind, and the rendered
files for random valid routes are split into words the way HAProxy's line
parser does (``haproxy_words``) to check that each value stays the one word
it was meant to be, that the frontend has one rule a (route, path) in the
documented precedence, and that no rule hides a narrower one placed after it.
``tests/integration/test_haproxy_render_check.py`` checks the same files with
the real ``haproxy -c`` and routes requests through a running HAProxy.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils import acme_challenges, live_map
from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import exposure_warnings
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import (
    PATH_TYPES,
    ProxySettings,
    Route,
    access_log_choice,
    backend_name,
    config_word,
    render,
    route_fingerprint,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_sections import socket_address
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import LOADER_LINES, live_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import Canary
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import Preview
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import CHECK_TIMEOUT
from support.haproxy import domains, haproxy_words, paths, regexes, services, valid_routes

TEXT_KINDS = ("service", "color", "path", "regex", "domain", "address")
PLAIN_WORD_KINDS = ("service", "path", "domain", "address")  # written unquoted
NASTY_CHARS = " \t\n\r\x00\x0b\x0c\x1b\x7f\x85\u2028\u2029\ufeff#'\"\\$`{}[]<>|?^-*.:/@%;,=&!~_ABZabz019é\U0001f600"


# --------------------------------------------------------------------------- helpers


ACME_FRONTEND_LINES = acme_challenges.frontend_rule_lines() + acme_challenges.frontend_backend_lines()


def live_colors(text):
    """{service: color} of the live colors' map that the configuration carries (live_map's trailer)."""
    pairs = (line.split(" ", 1) for line in live_map.map_lines(text))
    return {key: value for key, value in pairs if not key.startswith(".")}


def served_backend(backend, colors):
    """``backend`` as HAProxy names it for a request: a route's live_backend looked up in the map (``colors``).
    Any other name (or a live_backend of a service the map lacks) stays as it is written."""
    for service, color in colors.items():
        if backend == live_backend(service):
            return backend_name(service, color)
    return backend


def use_backends(text):
    """Backend names of the frontend's use_backend lines of routes, in order (the ACME challenges' is always first),
    each route's live one read through the map the configuration carries."""
    colors = live_colors(text)
    return [served_backend(haproxy_words(line)[1], colors) for line in text.splitlines()
            if line.strip().startswith("use_backend ") and line not in ACME_FRONTEND_LINES]


def frontend_rules(text):
    """The frontend's matching rules in order: (backend, path acl words or None, host acl words or None), the backend
    of a route's live rule read through the map the configuration carries (served_backend).

    Also checks that every rule uses only its own acl lines, written just before
    it and numbered by its position, and that no acl line is left unused.
    """
    frontend = text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line for line in frontend if line in ACME_FRONTEND_LINES] == ACME_FRONTEND_LINES
    frontend = [line for line in frontend if line not in ACME_FRONTEND_LINES]
    rules, acls, colors = [], {}, live_colors(text)
    for line in frontend:
        words = haproxy_words(line)
        if words[0] == "acl":
            assert words[1] not in acls, line
            acls[words[1]] = words[2:]
        elif words[0] == "use_backend":
            assert words[2] == "if" and words[3:], line
            path = host = None
            for condition in words[3:]:
                assert condition in ("r%d_path" % len(rules), "r%d_host" % len(rules)), line
                if condition.endswith("_path"):
                    path = acls.pop(condition)
                else:
                    host = acls.pop(condition)
            rules.append((served_backend(words[1], colors), path, host))
        else:
            assert words in (["bind", "*:80"], ["default_backend", "be_dockerflow_none"],
                             ["http-request", "disable-l7-retry", "if", "!METH_GET"]), line
    assert acls == {}
    return rules


def rule_targets(text):
    """(backend, path or None) of each rule, in order."""
    return [(backend, path[-1] if path else None) for backend, path, _host in frontend_rules(text)]


def section_headers(text):
    return [line for line in text.splitlines() if line and not line[0].isspace() and not line.startswith("#")]


def assert_flow_error(value, kind, parameter="the_param"):
    with pytest.raises(FlowError) as info:
        config_word(value, kind, parameter)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and len(info.value.args[0].splitlines()) == 1, message
    assert message.startswith(parameter + "="), message
    return message


def is_control(char):
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def assert_one_plain_word(result):
    assert isinstance(result, str) and result
    assert not any(char.isspace() for char in result), result
    assert not any(char in result for char in "#'\"\\"), result
    assert not any(is_control(char) for char in result), result
    assert result.isascii() and result.isprintable(), result
    assert result.splitlines() == [result]
    assert haproxy_words("    x %s y" % result) == ["x", result, "y"]


# --------------------------------------------------------------------------- config_word examples


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        ("service", "web", "web"),
        ("service", "a", "a"),
        ("service", "9lives", "9lives"),
        ("service", "0", "0"),
        ("service", "a-b", "a-b"),
        ("service", "Books-MS-v2", "Books-MS-v2"),  # letters keep their case
        ("service", "a--b", "a--b"),
        ("service", "a" * 63, "a" * 63),
        ("service", "a" + "-" * 61 + "9", "a" + "-" * 61 + "9"),
        ("color", "blue", "blue"),
        ("color", "green", "green"),
        ("color", "plain", "plain"),
        ("path", "/", "/"),
        ("path", "/api/v1/", "/api/v1/"),
        ("path", "/a-b_c.d~e", "/a-b_c.d~e"),
        ("path", "/!$&()*+,;=:@%20", "/!$&()*+,;=:@%20"),
        ("path", "//double", "//double"),
        ("path", "/" + "a" * 1023, "/" + "a" * 1023),
        ("regex", "^/api", "'^/api'"),
        ("regex", r"^/api/v[0-9]+/\d+$", r"'^/api/v[0-9]+/\d+$'"),
        ("regex", "^/a b#c\"d$", "'^/a b#c\"d$'"),  # literal inside single quotes
        ("regex", r"\.json$", r"'\.json$'"),
        ("regex", r"\-v2", r"'\-v2'"),
        ("regex", "[-]v2", "'[-]v2'"),
        ("regex", "/caf\u00e9", "'/caf\u00e9'"),
        ("regex", "a" * 1024, "'%s'" % ("a" * 1024)),
        ("domain", "example.com", "example.com"),
        ("domain", "Shop.Example.COM", "shop.example.com"),
        ("domain", "*.example.com", "*.example.com"),
        ("domain", "localhost", "localhost"),
        ("domain", "a-b.c-d.e", "a-b.c-d.e"),
        ("domain", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("domain", "1.2.3.4", "1.2.3.4"),
        ("domain", ".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61),  # 253
        ("address", "*", "*"),
        ("address", "127.0.0.1", "127.0.0.1"),
        ("address", "0.0.0.0", "0.0.0.0"),
        ("address", "[::1]", "[::1]"),
        ("address", "[fe80::1:AbCd]", "[fe80::1:AbCd]"),
        ("address", "proxy-1.internal", "proxy-1.internal"),
        ("port", 1, "1"),
        ("port", 80, "80"),
        ("port", 65535, "65535"),
    ],
)
def test_config_word_accepts(kind, value, expected):
    assert config_word(value, kind, "p") == expected


@pytest.mark.parametrize(
    "kind, value",
    [
        ("service", ""),
        ("service", "-web"),
        ("service", "_web"),
        ("service", ".web"),
        ("service", "a" * 64),
        ("service", "a" + "-" * 62 + "b"),  # 64 characters
        ("service", "-"),
        ("service", "web-"),
        # one DNS label for Consul's _<service>._<color>.service.<domain>: no '_' and no '.'
        ("service", "web_api"),
        ("service", "web.api"),
        ("service", "web."),
        ("service", "web..api"),
        ("service", "Books-MS_v2.api"),
        ("service", "_web._blue"),
        ("service", "web app"),
        ("service", "web\n"),  # '$' alone would accept a trailing newline
        ("service", "web\nbackend evil"),
        ("service", "web\t"),
        ("service", "web#x"),
        ("service", "web'"),
        ("service", 'web"'),
        ("service", "web\\"),
        ("service", "web/x"),
        ("service", "w\u00e9b"),
        ("color", "Blue"),
        ("color", "red"),
        ("color", ""),
        ("color", "blue\n"),
        ("color", " blue"),
        ("path", ""),
        ("path", "api"),
        ("path", "/a b"),
        ("path", "/a#b"),
        ("path", "/a'b"),
        ('path', '/a"b'),
        ("path", "/a\\b"),
        ("path", "/a\n"),
        ("path", "/a\nacl x always_true"),
        ("path", "/a\r"),
        ("path", "/a\tb"),
        ("path", "/a\x00"),
        ("path", "/a?x=1"),
        ("path", "/a{b}"),
        ("path", "/caf\u00e9"),
        ("path", "/" + "a" * 1024),
        ("regex", ""),
        ("regex", "a'b"),
        ("regex", "a\nb"),
        ("regex", "^/a\n"),
        ("regex", "a\rb"),
        ("regex", "a\x00"),
        ("regex", "a\tb"),
        ("regex", "\x1f"),
        ("regex", "a\x7f"),
        ("regex", "a\x85"),
        ("regex", "a\u2028b"),
        ("regex", "a\ud800"),  # a lone surrogate cannot even be written as UTF-8
        ("regex", "-f"),  # HAProxy would read it as the ACL flag loading patterns from a file
        ("regex", "-m"),
        ("regex", "-i"),
        ("regex", "--"),
        ("regex", "("),
        ("regex", "[a-"),
        ("regex", "*a"),
        ("regex", "a" * 1025),
        ("domain", ""),
        ("domain", "*"),
        ("domain", "*."),
        ("domain", "**.example.com"),
        ("domain", "a.*.com"),
        ("domain", "-a.com"),
        ("domain", "a-.com"),
        ("domain", "a..com"),
        ("domain", ".a.com"),
        ("domain", "a.com."),
        ("domain", "a_b.com"),
        ("domain", "a b.com"),
        ("domain", "a.com\n"),
        ("domain", "a.com\nbackend x"),
        ("domain", "a.com#"),
        ("domain", "a'.com"),
        ("domain", "a:80.com"),
        ("domain", "a" * 64 + ".com"),
        ("domain", ".".join(["a" * 63] * 4)),  # 255 characters
        ("domain", "caf\u00e9.com"),
        ("address", ""),
        ("address", "1.2.3.4:80"),
        ("address", "::1"),
        ("address", "[::1"),
        ("address", "a b"),
        ("address", "*\n"),
        ("address", "127.0.0.1\n"),
        ("address", "127.0.0.1#"),
        ("address", "ipv4@1.2.3.4"),
        ("address", "[::1]:80"),
    ],
)
def test_config_word_rejects(kind, value):
    assert_flow_error(value, kind, "some_param")


@pytest.mark.parametrize("value", [True, False, 0, -1, 65536, 100000, "80", 80.0, None, [80]])
def test_config_word_rejects_bad_ports(value):
    message = assert_flow_error(value, "port", "http_port")
    assert "1 to 65535" in message


@pytest.mark.parametrize("kind", TEXT_KINDS)
@pytest.mark.parametrize("value", [None, 1, 1.5, b"web", ["web"], True])
def test_config_word_rejects_non_text(kind, value):
    message = assert_flow_error(value, kind, "service_path")
    assert "expected text" in message


def test_config_word_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown kind"):
        config_word("x", "colour", "p")


def test_config_word_error_names_parameter_and_escapes_value():
    message = assert_flow_error("web\nbackend evil", "path", "service_path")
    assert message.startswith("service_path='web\\nbackend evil' is not valid")


@pytest.mark.parametrize("value", ["web\nbackend evil", "web_api", "web.api", "web-", "a" * 64])
def test_service_error_explains_the_consul_dns_label(value):
    message = assert_flow_error(value, "service", "service_name")
    assert message == (
        "service_name=%r cannot be routed: Consul DNS needs 1-63 letters, digits or '-', starting and ending "
        "with a letter or digit." % value
    )


# --------------------------------------------------------------------------- config_word properties

any_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from(NASTY_CHARS), max_size=30),
    st.text(alphabet=st.sampled_from(NASTY_CHARS), max_size=20).map(lambda s: "/" + s),
    st.text(alphabet=st.sampled_from(NASTY_CHARS), max_size=20).map(lambda s: "*." + s),
    st.from_regex(r"^[a-z0-9.*-]{1,20}$"),  # '$' lets hypothesis add a trailing newline
    st.from_regex(r"^/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*$"),
)


@given(value=any_text, kind=st.sampled_from(PLAIN_WORD_KINDS))
def test_plain_words_are_rejected_or_one_safe_word(value, kind):
    try:
        result = config_word(value, kind, "my_param")
    except FlowError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).startswith("my_param=")
        return
    assert_one_plain_word(result)
    if kind == "path":
        assert result == value and result.startswith("/")
    if kind == "domain":
        assert result == result.lower() and not result.startswith("-")
    if kind == "service":
        assert result == value and is_dns_label(result)


def is_port_number(value):
    """An int that is not a bool (True would otherwise pass as port 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_dns_label(value):
    """The one DNS label Consul's _<service>._<color>.service.<domain> needs, written without a regex."""
    allowed = set(string.ascii_letters + string.digits + "-")
    return 1 <= len(value) <= 63 and set(value) <= allowed and value[0] != "-" and value[-1] != "-"


@given(
    value=st.one_of(
        any_text,
        st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=70),
        st.builds(lambda n, end: "a" * n + end, st.integers(55, 70), st.sampled_from(["", "b", "-", "_", "."])),
    )
)
def test_service_names_are_accepted_exactly_when_they_are_one_dns_label(value):
    try:
        result = config_word(value, "service", "service_name")
    except FlowError as exc:
        assert not is_dns_label(value), value
        assert str(exc).startswith("service_name=%r cannot be routed: Consul DNS needs" % value)
        return
    assert is_dns_label(value) and result == value


@given(value=any_text)
def test_regex_words_are_rejected_or_one_single_quoted_word(value):
    try:
        result = config_word(value, "regex", "service_path")
    except FlowError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).startswith("service_path=")
        return
    assert result.startswith("'") and result.endswith("'") and len(result) >= 3
    inner = result[1:-1]
    assert inner == value
    assert "'" not in inner and "\n" not in inner and "\r" not in inner
    assert not any(is_control(char) or ord(char) < 32 or ord(char) == 127 for char in inner), repr(inner)
    assert inner.isprintable()
    assert not inner.startswith("-")  # no ACL flag
    assert result.splitlines() == [result]
    assert haproxy_words("    acl x path_reg %s" % result) == ["acl", "x", "path_reg", value]
    re.compile(inner)
    result.encode("utf-8")


@given(value=st.one_of(st.integers(), st.booleans(), st.text(max_size=6), st.floats(allow_nan=False), st.none()))
def test_port_property(value):
    try:
        result = config_word(value, "port", "stats_port")
    except FlowError as exc:
        assert str(exc).startswith("stats_port=")
        assert not (is_port_number(value) and 1 <= value <= 65535)
        return
    assert is_port_number(value) and 1 <= value <= 65535 and result == str(value)


# --------------------------------------------------------------------------- Route.validated


def test_route_validated_returns_the_route():
    route = Route("web", "blue", paths=("/",), colors=("blue", "green"), health_path="/health")
    assert route.validated() is route


@pytest.mark.parametrize("path_type", ["glob", "", None, "PREFIX", "Exact", "regexp"])
def test_route_rejects_unknown_path_type(path_type):
    with pytest.raises(FlowError, match=r"^path_type=.* is not valid: use one of prefix, exact, regex\.$"):
        Route("web", "blue", paths=("/",), path_type=path_type).validated()


def test_route_path_types_constant():
    assert PATH_TYPES == ("prefix", "exact", "regex")


@pytest.mark.parametrize("paths, domain", [((), None), ((), ""), ([], None)])
def test_route_needs_a_path_or_a_domain(paths, domain):
    with pytest.raises(FlowError, match="service_path or service_domain is required to route web"):
        Route("web", "blue", paths=paths, domain=domain).validated()


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(color="red"), "color"),
        (dict(color="Blue"), "color"),
        (dict(color=None), "color"),
        (dict(color=""), "color"),
        (dict(colors=("blue", "red")), "colors"),
        (dict(colors=("blue\n",)), "colors"),
        (dict(colors=(None,)), "colors"),
    ],
)
def test_route_rejects_bad_colors(kwargs, parameter):
    values = dict(service="web", color="blue", paths=("/",))
    values.update(kwargs)
    with pytest.raises(FlowError, match="^%s=" % parameter):
        Route(**values).validated()


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(service="web app"), "service_name"),
        (dict(service="web\n"), "service_name"),
        (dict(paths=("/ok", "/bad path")), "service_path"),
        (dict(paths=("/ok\n",)), "service_path"),
        (dict(paths=(r"^/a\d",)), "service_path"),  # a regex is not a prefix path
        (dict(paths=("^/a'",), path_type="regex"), "service_path"),
        (dict(paths=("-f", "/etc/passwd"), path_type="regex"), "service_path"),
        (dict(paths=("/",), domain="bad domain"), "service_domain"),
        (dict(paths=("/",), domain=""), "service_domain"),
        (dict(health_path="health"), "health_path"),
        (dict(health_path="/health check"), "health_path"),
        (dict(health_path="/health\nbackend x"), "health_path"),
    ],
)
def test_route_rejects_bad_values(kwargs, parameter):
    values = dict(service="web", color="blue", paths=("/",))
    values.update(kwargs)
    with pytest.raises(FlowError) as info:
        Route(**values).validated()
    assert str(info.value).startswith(parameter + "="), str(info.value)


def test_route_regex_paths_are_validated_as_regexes():
    Route("web", "blue", paths=(r"^/a\d+$", "^/b c"), path_type="regex").validated()
    with pytest.raises(FlowError, match="not a valid regular expression"):
        Route("web", "blue", paths=("^/(a",), path_type="regex").validated()


def test_route_domain_only_is_valid():
    Route("web", "green", domain="*.example.com").validated()


def test_route_dict_round_trip():
    route = Route("web", "green", paths=("/a", "/b"), path_type="exact", domain="x.example.com",
                  colors=("blue", "green"), health_path="/health")
    assert Route.from_dict("web", route.as_dict()) == route
    assert Route.from_dict("web", {"color": "blue", "paths": ["/"]}) == Route("web", "blue", paths=("/",))


# --------------------------------------------------------------------------- render

SETTINGS = ProxySettings()


def sample_routes():
    return [
        Route("web", "blue", paths=("/",), colors=("blue", "green"), health_path="/health"),
        Route("api", "green", paths=(r"^/api/v[0-9]+/\d+$",), path_type="regex", colors=("blue", "green")),
        Route("shop", "blue", domain="*.example.com"),
        Route("admin", "plain", paths=("/admin", "/login"), path_type="exact", domain="admin.example.com"),
    ]


def test_render_is_deterministic():
    first = render(sample_routes(), SETTINGS)
    second = render(sample_routes(), SETTINGS)
    assert first == second
    text, digest = first
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert text.endswith("\n") and "\r" not in text


def test_render_does_not_depend_on_input_order():
    routes = sample_routes()
    assert render(routes, SETTINGS) == render(list(reversed(routes)), SETTINGS)
    assert render(routes, SETTINGS) == render(iter(routes), SETTINGS)


def test_digest_is_the_hash_of_the_map_which_holds_the_body_s_digest_the_colors_and_the_routes_fingerprints():
    text, digest = render(sample_routes(), SETTINGS)
    colors = ("# live-color admin plain\n"
              "# live-color api green\n"
              "# live-color shop blue\n"
              "# live-color web blue\n")
    fingerprints = "".join("# live-color .route.%s %s\n" % (route.service, route_fingerprint(route, SETTINGS))
                           for route in sorted(sample_routes(), key=lambda route: route.service))
    header, rest = text.split("\n", 1)
    body = rest.split("# live-color ", 1)[0]
    assert header.startswith("# Generated by dockerflow.flow") and body.endswith("\n".join(LOADER_LINES) + "\n")
    body_line = "# live-color .body %s\n" % hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    marker = "# live-color .generation %s\n" % digest + body_line + fingerprints + colors
    assert text == header + "\n" + body + marker, "the loader backend, then the map's lines, sorted"
    assert hashlib.sha256((body_line + fingerprints + colors).replace("# live-color ", "").encode("utf-8")
                          ).hexdigest()[:12] == digest
    assert live_map.config_generation(text) == digest


def test_a_route_s_fingerprint_follows_what_it_renders_but_the_color_and_weight_the_maps_hold():
    route = Route("web", "blue", ("/web",), colors=("blue", "green"), health_path="/health")
    fingerprint = route_fingerprint(route, SETTINGS)
    assert route_fingerprint(replace(route, color="green"), SETTINGS) == fingerprint, "the live color is the map's"
    split = route_fingerprint(replace(route, canary=Canary("green", 20)), SETTINGS)
    assert split != fingerprint and route_fingerprint(replace(route, canary=Canary("green", 60)), SETTINGS) == split, \
        "the weight is canary-weights.map's"
    for changed in (replace(route, paths=("/other",)), replace(route, health_path=None), replace(route, domain="a.b"),
                    replace(route, colors=("blue",))):
        assert route_fingerprint(changed, SETTINGS) != fingerprint
    for other in (replace(SETTINGS, max_servers=8), replace(SETTINGS, check_interval_ms=500)):
        assert route_fingerprint(route, other) != fingerprint
    assert route_fingerprint(route, SETTINGS, certificates="c0ffee") != fingerprint
    previewed = replace(route, preview=Preview(header="X-Preview"))
    assert route_fingerprint(previewed, SETTINGS) != route_fingerprint(replace(previewed, color="green"), SETTINGS), \
        "a preview's rules name the other color: a switch renders them"


@pytest.mark.parametrize(
    "change",
    [
        lambda r: Route(r.service, "green", r.paths, r.path_type, r.domain, r.colors, r.health_path),
        lambda r: Route(r.service, r.color, ("/other",), r.path_type, r.domain, r.colors, r.health_path),
        lambda r: Route(r.service, r.color, r.paths, "exact", r.domain, r.colors, r.health_path),
        lambda r: Route(r.service, r.color, r.paths, r.path_type, "web.example.com", r.colors, r.health_path),
        lambda r: Route(r.service, r.color, r.paths, r.path_type, r.domain, ("blue",), r.health_path),
        lambda r: Route(r.service, r.color, r.paths, r.path_type, r.domain, r.colors, "/ready"),
        lambda r: Route("web2", r.color, r.paths, r.path_type, r.domain, r.colors, r.health_path),
    ],
)
def test_digest_changes_when_a_route_changes(change):
    routes = sample_routes()
    _text, before = render(routes, SETTINGS)
    _text, after = render([change(routes[0])] + routes[1:], SETTINGS)
    assert before != after


def test_digest_changes_when_a_route_is_added_or_settings_change():
    _text, before = render(sample_routes(), SETTINGS)
    assert render(sample_routes() + [Route("new", "blue", paths=("/new",))], SETTINGS)[1] != before
    assert render(sample_routes(), ProxySettings(http_port=8080))[1] != before


def test_generation_override_is_used_and_validated():
    text, digest = render(sample_routes(), SETTINGS, generation="gen-42")
    assert digest == "gen-42"
    assert "\n# live-color .generation gen-42\n" in text and live_map.config_generation(text) == "gen-42"
    for bad in ("x\nbackend evil", "a b", "#", "x'"):
        with pytest.raises(FlowError, match=r"^generation="):
            render(sample_routes(), SETTINGS, generation=bad)


def test_render_orders_specific_routes_first():
    routes = [
        Route("rx", "blue", paths=("^/r",), path_type="regex"),
        Route("short", "blue", paths=("/a",)),
        Route("long", "blue", paths=("/a/b/c",)),
        Route("middle", "blue", paths=("/a/b",)),
        Route("ex", "blue", paths=("/e",), path_type="exact"),
        Route("domonly", "blue", domain="shop.example.com"),
        Route("domrx", "blue", paths=("^/x",), path_type="regex", domain="shop.example.com"),
        Route("domex", "blue", paths=("/x",), path_type="exact", domain="shop.example.com"),
        Route("domlong", "blue", paths=("/l", "/longer/path"), domain="shop.example.com"),
        Route("longhost", "blue", domain="www.shop.example.com"),
        Route("wild", "blue", domain="*.example.com"),
        Route("wildpath", "blue", paths=("/w",), domain="*.example.com"),
        Route("wilddeep", "blue", domain="*.shop.example.com"),
    ]
    text, _generation = render(routes, SETTINGS)
    assert rule_targets(text) == [
        # exact hosts first, the longer name first
        ("be_longhost_blue", None),
        # on one host: rules with a path (exact, prefixes longest first, regex), then the host alone
        ("be_domex_blue", "/x"),
        ("be_domlong_blue", "/longer/path"),
        ("be_domlong_blue", "/l"),
        ("be_domrx_blue", "^/x"),
        ("be_domonly_blue", None),
        # then wildcard hosts, the longer (narrower) one first
        ("be_wilddeep_blue", None),
        ("be_wildpath_blue", "/w"),
        ("be_wild_blue", None),
        # then no host: exact, prefixes from longest to shortest, regex last
        ("be_ex_blue", "/e"),
        ("be_long_blue", "/a/b/c"),
        ("be_middle_blue", "/a/b"),
        ("be_short_blue", "/a"),
        ("be_rx_blue", "^/r"),
    ]


def test_render_one_rule_per_path_interleaves_routes():
    # A route's paths are separate rules: /p/q of another service sits between /p/q/r and /p.
    routes = [Route("aaa", "blue", paths=("/p", "/p/q/r")), Route("bbb", "green", paths=("/p/q",))]
    text, _generation = render(routes, SETTINGS)
    assert rule_targets(text) == [("be_aaa_blue", "/p/q/r"), ("be_bbb_green", "/p/q"), ("be_aaa_blue", "/p")]
    assert text.count("    use_backend %s if " % live_backend("aaa")) == 2
    assert text.count("\nbackend be_aaa_blue\n") == 1  # still one backend a color


def test_render_ties_are_broken_by_service_then_path():
    routes = [
        Route("zzz", "blue", paths=("/same",)),
        Route("aaa", "blue", paths=("/same",)),
        Route("mmm", "blue", paths=("/b", "/a", "/c"), path_type="exact"),
        Route("rx2", "blue", paths=("^/y", "^/x"), path_type="regex"),
        Route("yyy", "blue", paths=("/p1",)),  # same kind and length: the service decides before the path
        Route("xxx", "blue", paths=("/p2",)),
    ]
    text, _generation = render(routes, SETTINGS)
    assert rule_targets(text) == [
        ("be_mmm_blue", "/a"),
        ("be_mmm_blue", "/b"),
        ("be_mmm_blue", "/c"),
        ("be_aaa_blue", "/same"),
        ("be_zzz_blue", "/same"),
        ("be_xxx_blue", "/p2"),
        ("be_yyy_blue", "/p1"),
        ("be_rx2_blue", "^/x"),
        ("be_rx2_blue", "^/y"),
    ]


def test_render_acl_lines():
    text, _generation = render(sample_routes(), SETTINGS)
    frontend = text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert frontend == [
        "    bind *:80",
        "    acl acme_challenge path_beg /.well-known/acme-challenge/",
        "    http-request return status 404 if acme_challenge !{ path_reg '^/[.]well-known/acme-challenge/[A-Za-z0-9_-]+$' }",
        "    http-request disable-l7-retry if !METH_GET",
        "    use_backend be_dockerflow_acme if acme_challenge { method GET }",
        "    default_backend be_dockerflow_none",
        # admin: two exact paths on an exact host, one rule each
        "    acl r0_path path /admin",
        "    acl r0_host req.hdr(host),field(1,:),lower -m str admin.example.com",
        "    use_backend %s if r0_path r0_host" % live_backend("admin"),
        "    acl r1_path path /login",
        "    acl r1_host req.hdr(host),field(1,:),lower -m str admin.example.com",
        "    use_backend %s if r1_path r1_host" % live_backend("admin"),
        # shop: a wildcard host alone
        "    acl r2_host req.hdr(host),field(1,:),lower -m end .example.com",
        "    use_backend %s if r2_host" % live_backend("shop"),
        # web, then api: no host, prefix before regex
        "    acl r3_path path_beg /",
        "    use_backend %s if r3_path" % live_backend("web"),
        "    acl r4_path path_reg '^/api/v[0-9]+/\\d+$'",
        "    use_backend %s if r4_path" % live_backend("api"),
    ]


def test_render_lowers_domains():
    text, _generation = render([Route("shop", "blue", domain="Shop.EXAMPLE.com")], SETTINGS)
    assert "-m str shop.example.com" in text
    text, _generation = render([Route("shop", "blue", domain="*.EXAMPLE.com")], SETTINGS)
    assert "-m end .example.com" in text


def test_render_both_colors_and_health_check():
    text, _generation = render(sample_routes(), SETTINGS)
    for color, letter in (("blue", "b"), ("green", "g")):
        block = text.split("\nbackend be_web_%s\n" % color, 1)[1].split("\n\n", 1)[0]
        assert block.splitlines() == [
            "    balance roundrobin",
            "    option httpchk GET /health",
            "    server-template %s 1-32 _web._%s.service.consul resolvers consul resolve-opts allow-dup-ip "
            "resolve-prefer ipv4 check inter 1000ms fastinter 250ms fall 2 rise 1" % (letter, color),
        ]
    assert "\nbackend be_api_blue\n" in text and "\nbackend be_api_green\n" in text
    assert "option httpchk" not in text.split("\nbackend be_api_blue\n", 1)[1].split("\n\n", 1)[0]
    # a route without colors gets the backend of its own color only
    assert "\nbackend be_shop_blue\n" in text and "be_shop_green" not in text
    assert "\nbackend be_admin_plain\n" in text and "be_admin_blue" not in text
    assert text.count("option httpchk GET /health") == 2


def test_the_proxy_checks_are_as_patient_as_consuls():
    """A check answered within Consul's timeout must not mark the server DOWN in the proxy (test_proxy.py's
    test_a_new_color_slow_to_answer_its_checks_is_switched_to_and_stays_up): without ``timeout check`` HAProxy
    gives a check only ``inter``."""
    defaults = render([], SETTINGS)[0].split("\ndefaults\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "    timeout check %s" % CHECK_TIMEOUT in defaults
    assert int(CHECK_TIMEOUT.rstrip("s")) * 1000 > SETTINGS.check_interval_ms


def test_render_without_routes_has_only_the_default_backend():
    text, _generation = render([], SETTINGS)
    assert section_headers(text) == [
        "global",
        "defaults",
        "resolvers consul",
        "listen stats",
        "frontend http",
        "backend be_dockerflow_none",
        "backend be_dockerflow_acme",
        "backend be_dockerflow_live_colors",
    ]
    assert use_backends(text) == []
    assert " acl r" not in text and "server-template" not in text
    assert "    default_backend be_dockerflow_none" in text.splitlines()
    none_block = text.split("\nbackend be_dockerflow_none\n", 1)[1].split("\n\n", 1)[0]
    assert none_block == "    http-request return status 503 content-type text/plain string 'no route'"


def test_a_render_without_routes_still_loads_the_map_and_carries_its_generation():
    text, digest = render([], SETTINGS)
    assert "\n" + "\n".join(LOADER_LINES[1:]) + "\n" in text
    assert [line for line in text.splitlines() if line.startswith("# live-color ")] == [
        "# live-color .generation %s" % digest, "# live-color .body %s" % live_map.LiveMap.of_config(text).body]
    assert live_map.config_generation(text) == digest


def test_a_switch_of_one_color_changes_only_that_line_of_the_map_and_the_generation():
    routes = sample_routes()
    assert routes[0].service == "web" and routes[0].colors == ("blue", "green")
    before, before_generation = render(routes, SETTINGS)
    after, after_generation = render([replace(routes[0], color="green")] + routes[1:], SETTINGS)
    assert live_map.body(after) == live_map.body(before), "the rest is the same: a map swap, no reload"
    assert after_generation != before_generation
    old_map, new_map = live_map.map_text(before).splitlines(), live_map.map_text(after).splitlines()
    assert len(old_map) == len(new_map) == 10
    assert [(old, new) for old, new in zip(old_map, new_map, strict=True) if old != new] == [
        (".generation %s" % before_generation, ".generation %s" % after_generation),
        ("web blue", "web green"),
    ]
    assert live_map.LiveMap.of_config(before).recolored("web", "green") == live_map.LiveMap.of_config(after), \
        "a swap knows the generation from the running map alone"


def test_servers_outlive_a_consul_outage_and_a_restarted_consul_saying_no_instance():
    text, _generation = render([Route(service="web", color="blue", paths=("/web",))], SETTINGS)
    resolvers = text.split("\nresolvers consul\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "    hold nx 30s" in resolvers, "a restarted Consul answers NXDOMAIN for seconds: keep the servers"
    assert "    hold obsolete 1s" in resolvers, "an instance missing from 4 answers in a row leaves"
    for status in ("refused", "timeout", "other"):
        assert "    hold %s 24h" % status in resolvers, "a failing Consul DNS must not empty the backends after 30 s"


def test_consul_dns_is_asked_every_250_ms():
    """At 1 s a release took 0.8-1.0 s longer: a switch waits for the running worker to find the new color's
    instances and for the new worker's first passed check of them (benchmarks/README.md, "Consul DNS asked every
    250 ms")."""
    sections = _sections(render([Route(service="web", color="blue", paths=("/web",))], SETTINGS)[0])
    assert "timeout resolve 250ms" in sections["resolvers consul"]


def test_only_reads_are_replayed_once_a_server_saw_them():
    """A server that dies after acting on a POST must not get it acted on twice: L7 retries
    (empty-response, response-timeout) are for GET and HEAD; every method is retried when the
    connection failed, before the server saw anything (benchmarks/README.md, POST mode)."""
    text, _generation = render([Route(service="web", color="blue", paths=("/web",))], SETTINGS)
    defaults = text.split("\ndefaults\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "    retry-on conn-failure empty-response response-timeout" in defaults
    frontend = text.split("\nfrontend http\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rule = frontend.index("    http-request disable-l7-retry if !METH_GET")
    assert rule < frontend.index("    default_backend be_dockerflow_none")


def test_render_settings():
    settings = ProxySettings(
        http_address="0.0.0.0", http_port=8080, stats_address="[::1]", stats_port=8405, admin_address="127.0.0.2",
        admin_port=9998, consul_dns_address="10.0.0.2", consul_dns_port=53,
        max_servers=5, check_interval_ms=250, server_state_file="/tmp/state",
    )
    text, _generation = render([Route("web", "blue", paths=("/",))], settings)
    lines = text.splitlines()
    for expected in (
        "    bind 0.0.0.0:8080",
        "    bind [::1]:8405",
        "    stats socket ipv4@127.0.0.2:9998 level admin expose-fd listeners",
        "    nameserver consul 10.0.0.2:53",
        "    server-state-file /tmp/state",
        "    max-spread-checks 100ms",  # a new worker's first checks within 0.1 s: a switch waits for one
        "    user haproxy",
        "    group haproxy",
    ):
        assert expected in lines
    assert "server-template b 1-5 _web._blue.service.consul" in text and "inter 250ms" in text
    assert "    accepted_payload_size 8192" in lines


def _sections(text: str) -> dict[str, list[str]]:
    """Each section of a rendered configuration by its header line, its lines without the indent."""
    sections = {}
    for block in text.split("\n\n"):
        header, *lines = [line for line in block.strip("\n").splitlines() if not line.startswith("#")]
        sections[header] = [line.strip() for line in lines]
    return sections


def test_the_access_log_of_all_is_every_request():
    sections = _sections(render([Route("web", "blue", paths=("/",))], ProxySettings(access_log="all"))[0])
    assert "log stdout format raw local0 info" in sections["global"]
    assert [line for line in sections["defaults"] if "log" in line] == ["log global", "option httplog"]
    assert not [line for lines in sections.values() for line in lines if "set-log-level" in line]


def test_the_access_log_skips_requests_that_ended_normally_by_default():
    # errors by default: a line per request cost 10-25 % more of HAProxy's CPU per request (benchmarks/README.md).
    assert ProxySettings().access_log == "errors"
    sections = _sections(render([Route("web", "blue", paths=("/",))], ProxySettings())[0])
    assert [
        line for line in sections["defaults"] if "log" in line] == ["log global", "option httplog", "option dontlog-normal"]
    assert not [line for lines in sections.values() for line in lines if "set-log-level" in line]


def test_no_access_log_keeps_the_log_of_servers_going_up_or_down():
    sections = _sections(render([Route("web", "blue", paths=("/",))], ProxySettings(access_log="off"))[0])
    # The sections that log requests log nothing, before any other rule; the log stays for server state changes.
    for section in ("frontend http", "listen stats"):
        assert next(line for line in sections[section] if line.startswith("http-request")) == \
            "http-request set-log-level silent"
    assert not [line for lines in sections.values() for line in lines if line == "no log"]
    assert "log global" in sections["defaults"] and "log stdout format raw local0 info" in sections["global"]
    assert "option dontlog-normal" not in sections["defaults"]


@pytest.mark.parametrize("value, expected", [(False, "off"), ("False", "off"), ("false", "off"), ("off", "off"),
                                             ("all", "all"), ("errors", "errors"), (None, None)])
def test_an_unquoted_off_read_as_false_is_off(value, expected):
    assert access_log_choice(value) == expected


@pytest.mark.parametrize("slots, payload", [(1, 8192), (32, 8192), (56, 8192), (64, 9216), (200, 26624), (500, 65024)])
def test_the_dns_payload_grows_with_the_slots_so_consul_answers_every_instance(slots, payload):
    # Consul 1.8 answers at most 135 SRV records in 8192 bytes and drops the rest without a truncation flag.
    text, _generation = render([Route("web", "blue", paths=("/",))], ProxySettings(max_servers=slots))
    assert "    accepted_payload_size %d" % payload in text.splitlines()
    assert "server-template b 1-%d _web._blue.service.consul" % slots in text


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(http_address="1.2.3.4\nbind *:1"), "proxy_listen_address"),
        (dict(http_address="*\n"), "proxy_listen_address"),
        (dict(stats_address="a b"), "proxy_stats_address"),
        (dict(admin_address="#"), "proxy_admin_address"),
        (dict(consul_dns_address=""), "consul_dns"),
        (dict(http_port=0), "proxy_http_port"),
        (dict(stats_port=True), "proxy_stats_port"),
        (dict(admin_port="9999"), "proxy_admin_port"),
        (dict(consul_dns_port=70000), "consul_dns"),
        (dict(max_servers=0), "proxy_max_servers"),
        (dict(max_servers=501), "proxy_max_servers"),
        (dict(max_servers=True), "proxy_max_servers"),
        (dict(max_servers="5"), "proxy_max_servers"),
        (dict(server_state_file="/var/lib/haproxy/state\nuser root"), "server_state_file"),
        (dict(server_state_file="/tmp/a b"), "server_state_file"),
        (dict(access_log="none"), "proxy_access_log"),
        (dict(access_log=False), "proxy_access_log"),
        (dict(access_log="all\nuser root"), "proxy_access_log"),
    ],
)
def test_render_rejects_bad_settings(kwargs, parameter):
    with pytest.raises(FlowError) as info:
        render([Route("web", "blue", paths=("/",))], ProxySettings(**kwargs))
    assert str(info.value).startswith(parameter + "="), str(info.value)


def test_render_rejects_invalid_routes():
    with pytest.raises(FlowError, match=r"^service_path="):
        render([Route("web", "blue", paths=("/a\nbackend x",))], SETTINGS)


def test_backend_name():
    assert backend_name("web", "green") == "be_web_green"


def test_domain_only_route_does_not_shadow_regex_routes_on_the_same_domain():
    routes = [
        Route("aaa", "blue", domain="shop.example.com"),
        Route("zzz", "blue", paths=("^/api",), path_type="regex", domain="shop.example.com"),
    ]
    assert use_backends(render(routes, SETTINGS)[0]) == ["be_zzz_blue", "be_aaa_blue"]


def test_exact_domain_before_wildcard_domain():
    routes = [
        Route("aaa", "blue", domain="*.example.com"),
        Route("mmm", "blue", domain="*.shop.example.com"),
        Route("zzz", "blue", domain="shop.example.com"),
    ]
    assert use_backends(render(routes, SETTINGS)[0]) == ["be_zzz_blue", "be_mmm_blue", "be_aaa_blue"]
    # an exact host as long as the wildcard that covers it still comes first
    routes = [Route("aaa", "blue", domain="*.example.com"), Route("zzz", "blue", domain="a.example.com")]
    assert use_backends(render(routes, SETTINGS)[0]) == ["be_zzz_blue", "be_aaa_blue"]


def test_any_host_rule_comes_before_every_rule_without_a_host():
    routes = [
        Route("aaa", "blue", paths=("/exact/and/long",), path_type="exact"),
        Route("zzz", "blue", domain="*.example.com"),
    ]
    assert use_backends(render(routes, SETTINGS)[0]) == ["be_zzz_blue", "be_aaa_blue"]


@pytest.mark.parametrize(
    "routes, duplicates",
    [
        ([Route("web", "blue", paths=("/a",)), Route("web", "blue", paths=("/a",))], "web"),
        ([Route("web", "blue", paths=("/a",)), Route("api", "blue", paths=("/api",)),
          Route("web", "green", domain="web.example.com")], "web"),
        ([Route("web", "blue", paths=("/a",)), Route("api", "blue", paths=("/api",)),
          Route("web", "green", paths=("/b",)), Route("api", "green", paths=("/api",))], "api, web"),
    ],
)
def test_render_rejects_two_routes_for_one_service(routes, duplicates):
    with pytest.raises(FlowError, match=r"^Service\(s\) %s have more than one route\.$" % duplicates):
        render(routes, SETTINGS)


# --------------------------------------------------------------------------- render properties

route_lists = st.lists(valid_routes(), max_size=6, unique_by=lambda route: route.service.lower())


def host_covers(outer, inner):
    """Every Host the ``inner`` host acl matches is matched by ``outer`` (None: any host)."""
    if outer is None:
        return True
    if inner is None:
        return False
    outer, inner = outer.lower(), inner.lower()
    if not outer.startswith("*."):
        return inner == outer
    return ("." + inner[2:] if inner.startswith("*.") else inner).endswith(outer[1:])


def path_covers(outer, inner):
    """Every path ``inner`` (path type, value) matches is matched by ``outer``; unknown for regexes (False)."""
    if outer is None:
        return True
    if inner is None:
        return False
    (outer_type, outer_path), (inner_type, inner_path) = outer, inner
    if outer_type == "prefix" and inner_type in ("prefix", "exact"):
        return inner_path.startswith(outer_path)
    return outer == inner


@settings(max_examples=80)  # keeps this file under ~5 s
@given(routes=route_lists)
def test_valid_routes_render_one_word_per_value(routes):
    for route in routes:
        route.validated()  # the strategies only produce accepted values
    text, digest = render(routes, SETTINGS)
    assert render(list(reversed(routes)), SETTINGS) == (text, digest)
    lines = text.splitlines()
    assert text == "\n".join(lines) + "\n"

    # sections: nothing a value holds opens a section
    backends = ["backend %s" % backend_name(r.service, color) for r in routes for color in set(r.colors) | {r.color}]
    headers = section_headers(text)
    assert headers[:7] == ["global", "defaults", "resolvers consul", "listen stats", "frontend http",
                           "backend be_dockerflow_none", "backend be_dockerflow_acme"]
    assert headers[-1] == "backend be_dockerflow_live_colors"
    # the map: the generation, the body's digest, each route's fingerprint and live color, sorted; the file's last
    # lines and its only such lines
    expected_map = [".generation " + digest, ".body " + live_map.LiveMap.of_config(text).body] + sorted(
        ["%s %s" % pair for pair in sorted((r.service, r.color) for r in routes)]
        + [".route.%s %s" % (r.service, route_fingerprint(r.validated(), SETTINGS)) for r in routes])
    assert lines[len(lines) - len(expected_map):] == ["# live-color " + line for line in expected_map]
    assert live_map.map_lines(text) == expected_map
    assert sorted(headers[7:-1]) == sorted(backends)
    assert sum(1 for line in lines if line.startswith("backend ")) == len(backends) + 3
    assert sum(1 for line in lines if line.startswith("    option httpchk ")) == sum(
        len(set(r.colors) | {r.color}) for r in routes if r.health_path
    )

    # one rule a (route, path), a domain-only route one rule; every acl is exactly the words meant
    rules = frontend_rules(text)
    assert sum(1 for line in lines if line.startswith("    use_backend ")) == len(rules) + 1  # and the ACME challenges

    by_backend = {backend_name(r.service, r.color): r for r in routes}
    fetches = {"prefix": "path_beg", "exact": "path", "regex": "path_reg"}
    found = []
    for backend, path_words, host_words in rules:
        route = by_backend[backend]
        if route.domain is None:
            assert host_words is None
        elif route.domain.lower().startswith("*."):
            assert host_words == ["req.hdr(host),field(1,:),lower", "-m", "end", route.domain.lower()[1:]]
        else:
            assert host_words == ["req.hdr(host),field(1,:),lower", "-m", "str", route.domain.lower()]
        if path_words is None:
            found.append((route.service, None))
        else:
            assert len(path_words) == 2 and path_words[0] == fetches[route.path_type]
            found.append((route.service, path_words[1]))
    assert sorted(found, key=repr) == sorted(
        ((r.service, path) for r in routes for path in (r.paths or (None,))), key=repr
    )

    # the order of the rules follows the documented precedence
    by_service = {r.service: r for r in routes}

    def precedence(rule):
        service, path = rule
        route = by_service[service]
        host = route.domain
        host_rank = 2 if host is None else (1 if host.startswith("*.") else 0)
        return (host_rank, -len(host or ""), path is None, ("exact", "prefix", "regex").index(route.path_type),
                -len(path or ""), service, path or "")

    assert [precedence(rule) for rule in found] == sorted(precedence(rule) for rule in found)

    # and no rule is made unreachable by an earlier one that matches strictly more
    matches = [
        (by_backend[backend].domain, None if path is None else (by_backend[backend].path_type, path[1]))
        for backend, path, _host in rules
    ]
    for later in range(len(matches)):
        for earlier in range(later):
            (host_e, path_e), (host_l, path_l) = matches[earlier], matches[later]
            covers = host_covers(host_e, host_l) and path_covers(path_e, path_l)
            covered = host_covers(host_l, host_e) and path_covers(path_l, path_e)
            assert not covers or covered, "rule %d %r shadows rule %d %r" % (
                earlier, rules[earlier], later, rules[later])

    # the health path reaches its backends as one word
    for route in routes:
        if route.health_path:
            assert "    option httpchk GET %s" % route.health_path in lines
            assert haproxy_words("    option httpchk GET %s" % route.health_path)[-1] == route.health_path


def test_shadow_oracle_sees_shadowing():
    """The shadowing check above can fail: the helpers recognise a broader rule."""
    assert host_covers(None, "shop.example.com") and host_covers("*.example.com", "Shop.Example.com")
    assert host_covers("*.example.com", "*.shop.example.com") and not host_covers("*.shop.example.com", "*.example.com")
    assert not host_covers("*.example.com", "example.com") and not host_covers("*.example.com", "evilexample.com")
    assert not host_covers("shop.example.com", None)
    assert path_covers(("prefix", "/a"), ("exact", "/a/b")) and path_covers(("prefix", "/a"), ("prefix", "/ab"))
    assert not path_covers(("exact", "/a"), ("prefix", "/a/b"))
    assert not path_covers(("prefix", "/a/b"), ("prefix", "/a"))
    assert not path_covers(("regex", "^/"), ("prefix", "/a")) and path_covers(None, ("regex", "^/"))


@settings(max_examples=30)
@given(routes=route_lists, extra=valid_routes())
def test_digest_tracks_content(routes, extra):
    assume(extra.service.lower() not in {route.service.lower() for route in routes})
    text, digest = render(routes, SETTINGS)
    text2, digest2 = render(routes + [extra], SETTINGS)
    assert text != text2 and digest != digest2
    assert render(routes, SETTINGS) == (text, digest)


@settings(max_examples=25)
@given(routes=st.lists(valid_routes(), min_size=1, max_size=4), data=st.data())
def test_a_second_route_for_a_service_is_rejected(routes, data):
    twin = data.draw(valid_routes(service=st.sampled_from([route.service for route in routes])))
    with pytest.raises(FlowError, match="more than one route"):
        render(routes + [twin], SETTINGS)


# --- the proxy's own endpoints ---------------------------------------------------------------


def test_own_endpoints_bind_to_loopback_by_default():
    text, _generation = render([], ProxySettings())
    assert "    stats socket ipv4@127.0.0.1:9999 level admin expose-fd listeners" in text.splitlines()
    assert "    bind 127.0.0.1:8404" in text.splitlines()
    defaults = ProxySettings()
    assert exposure_warnings(defaults.stats_address, defaults.admin_address) == []
    assert exposure_warnings("::1", "127.0.0.2") == []


def test_endpoints_beyond_loopback_are_warned_about():
    warnings = exposure_warnings("*", "10.0.0.5")
    assert [w.split(":")[0] for w in warnings] == ["proxy_stats_address=*", "proxy_admin_address=10.0.0.5"]
    assert all("without authentication" in w for w in warnings)


@pytest.mark.parametrize("address, expected", [("127.0.0.1", "ipv4@127.0.0.1:9998"), ("*", "ipv4@*:9998"),
                                               ("[::1]", "ipv6@::1:9998"), ("::", "ipv6@:::9998")])
def test_socket_address(address, expected):
    assert socket_address(address, 9998) == expected


# --------------------------------------------------------------------------- injection through render

# What ends a word, a line or a quote, starts a comment, escapes, or expands (%[...], ${...}).
DANGEROUS = " \t\n\r\x00#'\"\\%[]{}$`;\u2028\u0085\xa0"
NASTY_VALUES = st.one_of(
    st.text(alphabet=st.sampled_from(NASTY_CHARS), max_size=20),
    st.text(max_size=30),
    st.sampled_from(["%[src]", "/%[src]", "/a\nbackend evil", "/a #c", "/a\\", "'", "/" + "a" * 3000, "-f /etc/passwd",
                     "/${HOME}", '/"x"', "/\u2028", "a.b\nfrontend x", "127.0.0.1:1 level admin", "*\nbind *:1"]),
)


def near(valid):
    """A valid value with one or two characters slipped in: what nearly passes is what a lax check lets through."""
    def insert(value, positions, chars):
        for position, char in zip(positions, chars, strict=False):
            value = value[:position] + char + value[position:]
        return value
    return st.builds(insert, valid, st.lists(st.integers(0, 40), min_size=1, max_size=2),
                     st.lists(st.sampled_from(DANGEROUS), min_size=2, max_size=2))


def bad(valid):
    return st.one_of(near(valid), near(valid), NASTY_VALUES)


ROUTE_FIELDS = {
    "service": services, "color": st.sampled_from(["blue", "green", "plain"]), "path": paths, "regex": regexes,
    "domain": domains, "colors": st.sampled_from(["blue", "green"]), "health_path": paths,
}
SETTINGS_FIELDS = {
    "http_address": st.sampled_from(["*", "127.0.0.1", "[::1]", "localhost"]), "http_port": None,
    "stats_address": st.sampled_from(["127.0.0.1", "[::1]"]), "stats_port": None,
    "admin_address": st.sampled_from(["127.0.0.1", "*"]), "admin_port": None,
    "consul_dns_address": st.sampled_from(["127.0.0.1", "localhost"]), "consul_dns_port": None,
    "server_state_file": st.just("/var/lib/haproxy/state"),
}
RENDER_PARAMETERS = ("service_name", "color", "colors", "path_type", "service_path", "service_domain", "health_path",
                     "proxy_listen_address", "proxy_stats_address", "proxy_admin_address", "consul_dns", "proxy_http_port",
                     "proxy_stats_port", "proxy_admin_port", "server_state_file", "max_servers")


@st.composite
def one_bad_field(draw, field):
    """(route, settings) with ``field`` holding a nearly valid or arbitrary value, the rest valid."""
    route = {"service": draw(services), "color": "blue", "paths": ("/ok",), "path_type": "prefix", "domain": None,
             "colors": (), "health_path": None}
    settings_values = {}
    if field in ("path", "regex"):
        route.update(paths=(draw(bad(ROUTE_FIELDS[field])),), path_type="regex" if field == "regex" else draw(
            st.sampled_from(["prefix", "exact"])))
    elif field == "colors":
        route["colors"] = (draw(bad(ROUTE_FIELDS[field])),)
    elif field in ROUTE_FIELDS:
        route[field] = draw(bad(ROUTE_FIELDS[field]))
    elif SETTINGS_FIELDS[field] is None:  # a port
        settings_values[field] = draw(st.one_of(st.integers(-1, 70000), st.sampled_from([True, "80", 1.5, None, "80\n"])))
    else:
        settings_values[field] = draw(bad(SETTINGS_FIELDS[field]))
    return Route(**route), ProxySettings(**settings_values)


def skeleton(text):
    """Each line's directive and word count: what a value could change only by escaping its word."""
    return [(words[0], len(words)) for words in map(haproxy_words, text.splitlines()) if words]


@pytest.mark.parametrize("field", sorted(ROUTE_FIELDS) + sorted(SETTINGS_FIELDS))
@settings(max_examples=25)  # a field's mutant slips through in about 1 in 10 examples: 25 catch it 19 times in 20
@given(data=st.data())
def test_any_value_is_refused_by_name_or_stays_inside_its_word(field, data):
    route, proxy_settings = data.draw(one_bad_field(field))
    try:
        text, _generation = render([route], proxy_settings)
    except FlowError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(RENDER_PARAMETERS), message
        return
    # The same file for tame values of the same shape has the same directives and word counts ...
    domain = route.domain
    tame_route = Route("svc", route.color, paths=("/p" if route.path_type != "regex" else "^/p",), path_type=route.path_type,
                       domain=None if domain is None else ("*.d.example" if domain.startswith("*.") else "d.example"),
                       colors=route.colors, health_path=None if route.health_path is None else "/h")
    tame_settings = ProxySettings(admin_address="[::1]" if ":" in proxy_settings.admin_address else "127.0.0.1")
    assert skeleton(text) == skeleton(render([tame_route], tame_settings)[0])
    # ... and every value is one whole word where it belongs.
    lines = [haproxy_words(line) for line in text.splitlines()]
    assert any(words[:1] == ["acl"] and words[-1] == route.paths[0] for words in lines), route.paths
    if route.health_path is not None:
        assert ["option", "httpchk", "GET", route.health_path] in lines
    if domain is not None:
        expected = domain.lower()[1:] if domain.startswith("*.") else domain.lower()
        assert any(words[:1] == ["acl"] and words[-1] == expected for words in lines), domain
    for name, value in vars(proxy_settings).items():
        if isinstance(value, str) and name.endswith("address") and value != "*":
            assert any(value.strip("[]") in " ".join(words) for words in lines), (name, value)


def test_the_stats_listener_serves_prometheus_metrics_beside_the_page_and_healthz():
    text, _generation = render([Route(service="web", color="blue", paths=("/web",))], SETTINGS)
    stats = text.split("\nlisten stats\n", 1)[1].split("\n\n", 1)[0].splitlines()
    metrics = "    http-request use-service prometheus-exporter if { path /metrics }"
    assert metrics in stats, "issue 13: the proxy's own counters for a user's Prometheus"
