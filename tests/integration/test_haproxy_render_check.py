# -*- coding: utf-8 -*-
"""Rendered HAProxy configurations checked by the real HAProxy 3.0 (``haproxy -c``), no mocks.

One long-lived container of ``dockerflow-test/haproxy:3.0`` per module (entrypoint
``sleep infinity``, no network) receives each file through ``put_archive`` and runs
``haproxy -c -f FILE`` through ``exec``; only the exit code decides (HAProxy may print
notices about the server-state file or the unreachable Consul resolver). One test also
runs a rendered configuration for real inside that container and reads HAProxy's
request log to see which backend every request was routed to.
"""

from __future__ import annotations

import io
import itertools
import re
import tarfile
import time
import uuid

import docker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import (
    ProxySettings,
    Route,
    render,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import LIVE_MAP_FILE, live_backend, map_text
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import WEIGHTS_FILE
from support.haproxy import valid_routes

HAPROXY_IMAGE = "dockerflow-test/haproxy:3.0"
CHECK_DIR = "/tmp"


class HAProxyChecker:
    """Copies configuration files into the container and runs haproxy there."""

    def __init__(self, container):
        self.container = container
        self.counter = itertools.count()

    def put(self, text, name=None, directory=CHECK_DIR):
        name = name or "check-%d.cfg" % next(self.counter)
        data = text.encode("utf-8")
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        assert self.container.put_archive(directory, archive.getvalue())
        return "%s/%s" % (directory, name)

    def put_live_colors(self, text):
        """The live colors' map ``text`` carries, where its rules read it (as the proxy's reload script writes it),
        and a canary weights file if there is none (flow_proxy writes it before a route's canary rule)."""
        directory, _slash, name = LIVE_MAP_FILE.rpartition("/")
        if self.run(["test", "-e", WEIGHTS_FILE])[0] != 0:
            self.put("", WEIGHTS_FILE.rpartition("/")[2], directory)
        return self.put(map_text(text), name, directory)

    def run(self, command):
        result = self.container.exec_run(command)
        return result.exit_code, result.output.decode("utf-8", "replace")

    def check(self, text):
        """(exit code, output) of ``haproxy -c`` on ``text`` (with the live colors' map its rules read)."""
        self.put_live_colors(text)
        return self.run(["haproxy", "-c", "-f", self.put(text)])

    def assert_valid(self, text):
        code, output = self.check(text)
        assert code == 0, "haproxy -c rejected the rendered configuration:\n%s\n--- config ---\n%s" % (output, text)


@pytest.fixture(scope="module")
def haproxy():
    client = docker.from_env(version="auto")
    try:
        client.ping()
    except Exception as exc:  # the harness must have started the engine: fail, never skip
        pytest.fail("No Docker engine answers (%s); run the tests with `make test`." % exc)
    try:
        client.images.get(HAPROXY_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail("Test image %s is missing; `make images` builds it." % HAPROXY_IMAGE)
    container = client.containers.run(
        HAPROXY_IMAGE,
        entrypoint=["sleep", "infinity"],
        command=[],
        name="dockerflow-test-hacheck-%s" % uuid.uuid4().hex[:12],
        labels={"dockerflow.test": "1"},
        user="0",  # root: binds and drops to the configured user like the real proxy
        network_mode="none",
        detach=True,
    )
    try:
        yield HAProxyChecker(container)
    finally:
        container.remove(force=True)
        client.close()


# --------------------------------------------------------------------------- examples


def sample_routes():
    return [
        Route("web", "blue", paths=("/",), colors=("blue", "green"), health_path="/health"),
        Route("exact", "green", paths=("/exact", "/exact2"), path_type="exact", colors=("blue", "green")),
        Route("api", "blue", paths=(r"^/api/v[0-9]+/\d+$", r"\.json$"), path_type="regex", health_path="/api/health"),
        Route("odd", "plain", paths=(r'^/odd/a b#c"d\$HOME;%20\\x$', r"\-v2", "[-]v3"), path_type="regex"),
        Route("chars", "blue", paths=("/c!$&()*+,;=:@%41", "/~user/a-b_c.d")),
        Route("shop", "green", domain="Shop.Example.com", colors=("blue", "green"), health_path="/health"),
        Route("wild", "blue", domain="*.example.org"),
        Route("admin", "blue", paths=("/admin",), path_type="prefix", domain="admin.example.com"),
        Route("Books-MS-v2", "green", paths=("/books",), colors=("green", "blue")),
        Route("a" + "-" * 61 + "z", "blue", paths=("/longest-name",)),  # a 63-character DNS label
        Route("shopapi", "blue", paths=("^/api/", "^/v2/"), path_type="regex", domain="shop.example.com"),
        Route("deepwild", "green", paths=("/deep",), domain="*.a.example.org"),
    ]


def test_checker_rejects_an_invalid_configuration(haproxy):
    """The check can fail: a hand-made configuration with errors exits non-zero."""
    text, _generation = render(sample_routes(), ProxySettings())
    broken = text.replace("    default_backend be_dockerflow_none\n", "    default_backend be_missing\n", 1)
    assert broken != text
    code, output = haproxy.check(broken)
    assert code != 0, output
    assert "be_missing" in output

    code, output = haproxy.check("frontend http\n    bind *:80\n    acl r0_path path_beg /a\n /b\n")
    assert code != 0, output
    assert "unknown keyword '/b'" in output


def test_several_routes_pass_haproxy_check(haproxy):
    text, digest = render(sample_routes(), ProxySettings())
    assert r"path_reg '^/api/v[0-9]+/\d+$'" in text
    assert text.count("    use_backend %s if " % live_backend("shopapi")) == 2  # one rule a path
    assert "\n# live-color shopapi blue\n" in text
    assert "_%s._blue.service.consul" % ("a" + "-" * 61 + "z") in text
    assert "-m end .example.org" in text and "-m str shop.example.com" in text
    assert "\nbackend be_shop_blue\n" in text and "\nbackend be_shop_green\n" in text
    assert "option httpchk GET /health" in text
    assert "\n# live-color .generation %s\n" % digest in text
    haproxy.assert_valid(text)


def test_no_route_passes_haproxy_check(haproxy):
    haproxy.assert_valid(render([], ProxySettings())[0])


@pytest.mark.parametrize(
    "proxy_settings",
    [
        ProxySettings(),
        ProxySettings(max_servers=1, check_interval_ms=100, server_state_file="/tmp/state"),
        ProxySettings(http_address="0.0.0.0", http_port=8080, stats_address="[::1]", stats_port=1, admin_address="*",
                      admin_port=65535, consul_dns_address="localhost", consul_dns_port=53,
                      max_servers=500),
        ProxySettings(http_address="[::]", consul_dns_address="[::1]"),
        ProxySettings(access_log="all"),
        ProxySettings(access_log="errors"),
        ProxySettings(access_log="off"),
    ],
    ids=["defaults", "small", "addresses", "ipv6", "access-log-all", "access-log-errors", "access-log-off"],
)
def test_settings_pass_haproxy_check(haproxy, proxy_settings):
    haproxy.assert_valid(render(sample_routes(), proxy_settings)[0])


@pytest.mark.parametrize(
    "admin_address, socket",
    [
        ("[::1]", "ipv6@::1:9999"),
        ("[fe80::1:AbCd]", "ipv6@fe80::1:AbCd:9999"),
        ("[::]", "ipv6@:::9999"),
        ("127.0.0.1", "ipv4@127.0.0.1:9999"),
        ("localhost", "ipv4@localhost:9999"),
    ],
)
def test_admin_address_passes_haproxy_check(haproxy, admin_address, socket):
    text, _generation = render(sample_routes(), ProxySettings(admin_address=admin_address))
    assert "    stats socket %s level admin expose-fd listeners" % socket in text.splitlines()
    haproxy.assert_valid(text)


def test_haproxy_rejects_an_ipv6_address_on_an_ipv4_socket(haproxy):
    """What the ipv6@ prefix avoids: HAProxy refuses 'ipv4@[::1]' (so the check above can fail)."""
    text, _generation = render(sample_routes(), ProxySettings(admin_address="[::1]"))
    broken = text.replace("stats socket ipv6@::1:9999 ", "stats socket ipv4@[::1]:9999 ", 1)
    assert broken != text
    code, output = haproxy.check(broken)
    assert code != 0, output


@pytest.mark.parametrize("service", ["web.", "web..api", "web.api", "web_api", "_web", "web-", "Books-MS_v2.api"])
def test_service_names_that_are_not_one_dns_label_are_rejected(service):
    """'_<service>._<color>.service.<domain>' must stay one label a part, or Consul DNS cannot answer it."""
    with pytest.raises(FlowError, match=r"^service_name=.* cannot be routed: Consul DNS needs 1-63 letters"):
        render([Route(service, "blue", paths=("/",))], ProxySettings())


# --------------------------------------------------------------------------- random valid routes

proxy_settings = st.builds(
    ProxySettings,
    http_address=st.sampled_from(["*", "0.0.0.0", "127.0.0.1", "[::]"]),
    http_port=st.integers(1, 65535),
    stats_address=st.sampled_from(["127.0.0.1", "*", "[::1]", "localhost"]),
    admin_address=st.sampled_from(["127.0.0.1", "*", "0.0.0.0", "[::1]", "[::]", "localhost"]),
    consul_dns_address=st.sampled_from(["127.0.0.1", "[::1]", "localhost"]),
    max_servers=st.integers(1, 500),
    check_interval_ms=st.integers(1, 60000),
    access_log=st.sampled_from(["all", "errors", "off"]),
)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    routes=st.lists(valid_routes(canaries=True), min_size=1, max_size=6, unique_by=lambda route: route.service.lower()),
    proxy=proxy_settings,
)
def test_random_valid_routes_pass_haproxy_check(haproxy, routes, proxy):
    text, _generation = render(routes, proxy)
    haproxy.assert_valid(text)


# --------------------------------------------------------------------------- routing, for real

LIVE_PORT = 8080
LIVE_SCRIPT = r"""
haproxy -db -f "$1" > /tmp/live.log 2>&1 &
pid=$!
for i in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/%(port)d) 2>/dev/null && break
    sleep 0.05
done
while IFS='|' read -r host path; do
    exec 3<>/dev/tcp/127.0.0.1/%(port)d
    printf 'GET %%s HTTP/1.0\r\nHost: %%s\r\n\r\n' "$path" "$host" >&3
    cat <&3 > /dev/null
    exec 3<&-
done < "$2"
sleep 0.3
kill "$pid"
wait "$pid"
cat /tmp/live.log
""" % {"port": LIVE_PORT}

LIVE_ROUTES = [
    Route("exact", "blue", paths=("/exact",), path_type="exact"),
    Route("deep", "green", paths=("/api/v1/deep",)),
    Route("web", "blue", paths=("/web",), colors=("blue", "green"), health_path="/health"),
    Route("api", "green", paths=(r"^/api/v[0-9]+/\d+$",), path_type="regex"),
    Route("odd", "blue", paths=(r"^/odd/%23\$HOME;x\.json$",), path_type="regex"),
    Route("chars", "blue", paths=("/c!$&()*+,;=:@%41",)),
    Route("shop", "blue", domain="shop.example.com"),
    Route("wild", "green", domain="*.example.org"),
    Route("admin", "plain", paths=("/admin",), domain="admin.example.com"),
    # one rule a path: the other route's /p/q sits between /p/q/r and /p
    Route("multi", "blue", paths=("/p", "/p/q/r")),
    Route("mid", "green", paths=("/p/q",)),
    # on one host, a rule with a path before the host alone
    Route("shopapi", "green", paths=("^/api/",), path_type="regex", domain="shop.example.com"),
    # an exact host before a wildcard, a narrower wildcard before a wider one, any host before no host
    Route("wwworg", "blue", domain="www.example.org"),
    Route("zorg", "green", domain="z.example.org"),  # as long as *.example.org, and sorts after "wild"
    Route("deepwild", "blue", domain="*.deep.example.org"),
    Route("anycom", "green", domain="*.example.com"),
]

LIVE_REQUESTS = [  # (Host header, path, backend HAProxy must pick)
    ("x", "/exact", "be_exact_blue"),
    ("x", "/exact/more", "be_dockerflow_none"),
    ("x", "/api/v1/deep/x", "be_deep_green"),
    ("x", "/web/page", "be_web_blue"),
    ("x", "/api/v2/42", "be_api_green"),
    ("x", "/api/v2/4x", "be_dockerflow_none"),
    ("x", "/api/v2/d", "be_dockerflow_none"),  # the backslash of \d reached PCRE
    ("x", "/odd/%23$HOME;x.json", "be_odd_blue"),  # '$' is not expanded inside single quotes
    ("x", "/odd/%23/root;x.json", "be_dockerflow_none"),
    ("x", "/c!$&()*+,;=:@%41/x", "be_chars_blue"),
    ("x", "/c!$&()*+,;=:@%42", "be_dockerflow_none"),
    ("x", "/p/q/r/s", "be_multi_blue"),
    ("x", "/p/q/z", "be_mid_green"),
    ("x", "/p/z", "be_multi_blue"),
    ("shop.example.com", "/anything", "be_shop_blue"),
    ("SHOP.Example.com:8080", "/", "be_shop_blue"),
    ("shop.example.com", "/api/v1/deep", "be_shopapi_green"),
    ("Shop.Example.com", "/api/", "be_shopapi_green"),
    ("shop.example.com", "/apix", "be_shop_blue"),
    ("shop.example.com.evil", "/", "be_dockerflow_none"),
    ("a.b.example.org", "/", "be_wild_green"),
    ("www.example.org", "/", "be_wwworg_blue"),
    ("WWW.Example.org:80", "/web/page", "be_wwworg_blue"),
    ("a.www.example.org", "/", "be_wild_green"),
    ("z.example.org", "/", "be_zorg_green"),
    ("a.deep.example.org", "/", "be_deepwild_blue"),
    ("x.a.deep.example.org", "/exact", "be_deepwild_blue"),
    ("deep.example.org", "/", "be_wild_green"),
    ("example.org", "/", "be_dockerflow_none"),
    ("evilexample.org", "/", "be_dockerflow_none"),
    ("admin.example.com", "/admin/users", "be_admin_plain"),
    ("admin.example.com", "/other", "be_anycom_green"),
    ("admin.example.com", "/exact", "be_anycom_green"),
    ("x.example.com", "/api/v2/42", "be_anycom_green"),
    ("example.com", "/", "be_dockerflow_none"),
]


def test_rendered_routes_route_requests(haproxy):
    live_settings = ProxySettings(http_address="127.0.0.1", http_port=LIVE_PORT, server_state_file="/tmp/live-state")
    text, _generation = render(LIVE_ROUTES, live_settings)
    haproxy.assert_valid(text)
    config = haproxy.put(text, "live.cfg")
    haproxy.put_live_colors(text)
    requests = "".join(
        "%s|%s%sreq=%d\n" % (host, path, "&" if "?" in path else "?", number)
        for number, (host, path, _backend) in enumerate(LIVE_REQUESTS)
    )
    request_file = haproxy.put(requests, "live-requests.txt")
    script = haproxy.put(LIVE_SCRIPT, "live.sh")
    _exit_code, log = haproxy.run(["bash", script, config, request_file])

    routed = {}
    for line in log.splitlines():
        match = re.search(r" http (\S+)/\S+ .*\"GET \S*[?&]req=(\d+) HTTP/1\.0\"", line)
        if match:
            routed[int(match.group(2))] = match.group(1)
    expected = {number: backend for number, (_host, _path, backend) in enumerate(LIVE_REQUESTS)}
    assert routed == expected, "HAProxy log:\n%s" % log


# --------------------------------------------------------------------------- replays

# Two servers that act on a request (log its id) and then close without answering, as a server
# killed while it handles the request does. HAProxy sees an empty response on each attempt.
DYING_SERVER = r"""
use strict;
use IO::Socket::INET;
my ($port, $log) = @ARGV;
my $server = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port, Listen => 16, ReuseAddr => 1)
    or die "listen $port: $!";
while (my $client = $server->accept) {
    my ($id, $length) = ("-", 0);
    while (my $line = <$client>) {
        $id = $1 if $line =~ /^X-Request-Id:\s*(\S+)/i;
        $length = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        last if $line eq "\r\n";
    }
    read($client, my $body, $length) if $length;
    open(my $ledger, ">>", $log) or die "$log: $!";
    print $ledger "$id\n";
    close $ledger;
    close $client;
}
"""

REPLAY_SCRIPT = r"""
perl "$2" 18201 /tmp/replay-seen & s1=$!
perl "$2" 18202 /tmp/replay-seen & s2=$!
haproxy -db -f "$1" > /tmp/replay.log 2>&1 &
pid=$!
for port in 18201 18202 %(port)d; do
    for i in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.05
    done
done
: > /tmp/replay-seen  # the connection probes above logged "-"
exec 3<>/dev/tcp/127.0.0.1/%(port)d
printf 'GET /svc HTTP/1.0\r\nHost: x\r\nX-Request-Id: GET-1\r\n\r\n' >&3
echo "answer GET $(head -n 1 <&3 | tr -d '\r')"
exec 3<&-
exec 3<>/dev/tcp/127.0.0.1/%(port)d
printf 'POST /svc HTTP/1.0\r\nHost: x\r\nX-Request-Id: POST-1\r\nContent-Length: 1\r\n\r\nx' >&3
echo "answer POST $(head -n 1 <&3 | tr -d '\r')"
exec 3<&-
kill "$pid" "$s1" "$s2"
wait "$pid"
cat /tmp/replay-seen
""" % {"port": LIVE_PORT}


def test_a_post_the_server_saw_is_not_replayed_but_a_get_is(haproxy):
    """HAProxy's L7 retries (empty-response, response-timeout) resend a request the server already
    received: a POST a dying server acted on would be acted on again by the next one. Reads are
    still retried; a POST gets the proxy's 502 and reaches one server once."""
    live_settings = ProxySettings(http_address="127.0.0.1", http_port=LIVE_PORT, server_state_file="/tmp/replay-state")
    text, _generation = render([Route("svc", "blue", paths=("/svc",))], live_settings)
    # Two static servers instead of the Consul DNS template (no Consul in this container).
    text, count = re.subn(r"(?m)^    server-template .*$",
                          "    server s1 127.0.0.1:18201\n    server s2 127.0.0.1:18202", text)
    assert count == 1
    haproxy.assert_valid(text)
    config = haproxy.put(text, "replay.cfg")
    haproxy.put_live_colors(text)
    server = haproxy.put(DYING_SERVER, "dying.pl")
    _exit_code, output = haproxy.run(["bash", haproxy.put(REPLAY_SCRIPT, "replay.sh"), config, server])

    answers = dict(re.findall(r"(?m)^answer (GET|POST) (.*)$", output))
    seen = [line for line in output.splitlines() if line in ("GET-1", "POST-1")]
    assert answers == {"GET": "HTTP/1.1 502 Bad Gateway", "POST": "HTTP/1.1 502 Bad Gateway"}, output
    assert seen.count("GET-1") > 1, "a GET is retried on an empty response:\n%s" % output
    assert seen.count("POST-1") == 1, "the POST reached a server %d times:\n%s" % (seen.count("POST-1"), output)
