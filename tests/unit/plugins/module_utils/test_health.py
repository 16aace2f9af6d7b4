# -*- coding: utf-8 -*-
"""choose_probe picks the readiness signal; wait_healthy polls it.

wait_healthy is driven here by a small in-memory stand-in for the Docker
backend (it only replays container states), because these tests target the
polling and failure-reporting logic. The HTTP and TCP probes hit real sockets
on 127.0.0.1. Real containers are covered by tests/integration.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import health
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.compose import PortSpec, ServiceSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.health import Probe, choose_probe, wait_healthy

ADDRESS = "10.0.0.5"


def spec(ports=(), healthcheck=None):
    return ServiceSpec(name="app", image="app:1", ports=list(ports), healthcheck=healthcheck)


# --- choose_probe ---------------------------------------------------------------------------


def test_http_when_health_path_is_set():
    probe = choose_probe(spec([PortSpec(8080)]), False, "/health", None, ADDRESS)
    assert probe == Probe("http", address=ADDRESS, path="/health", container_port="8080/tcp")


def test_health_path_beats_a_docker_healthcheck():
    probe = choose_probe(spec([PortSpec(8080)], {"test": ["CMD", "true"]}), True, "/ready", None, ADDRESS)
    assert probe.kind == "http"


def test_health_port_selects_the_probed_port():
    ports = [PortSpec(8080), PortSpec(9090), PortSpec(53, "udp")]
    assert choose_probe(spec(ports), False, "/health", 9090, ADDRESS).container_port == "9090/tcp"
    assert choose_probe(spec(ports), False, None, "9090", ADDRESS) == Probe("tcp", ADDRESS, None, "9090/tcp")
    assert choose_probe(spec(ports), False, "/h", None, ADDRESS).container_port == "8080/tcp"


@pytest.mark.parametrize("health_path", ["health", "", "http://x/health", " /health"])
def test_health_path_must_start_with_a_slash(health_path):
    with pytest.raises(FlowError) as info:
        choose_probe(spec([PortSpec(8080)]), False, health_path, None, ADDRESS)
    assert str(info.value) == "health_path=%r is not valid: it must start with /." % health_path


def test_health_path_needs_a_port():
    with pytest.raises(FlowError, match=r"^health_path is set but the target publishes no port to probe"):
        choose_probe(spec(), False, "/health", None, ADDRESS)


def test_health_port_must_be_published():
    with pytest.raises(FlowError) as info:
        choose_probe(spec([PortSpec(8080), PortSpec(9090)]), False, "/health", 7000, ADDRESS)
    assert str(info.value) == "health_port=7000 is not a published container port of app (published: 8080, 9090)."


def test_health_port_without_any_port():
    with pytest.raises(FlowError, match=r"\(published: none\)\.$"):
        choose_probe(spec(), True, None, 8080, ADDRESS)


@pytest.mark.parametrize(
    "healthcheck, image_has_healthcheck",
    [
        ({"test": ["CMD", "curl", "-f", "localhost"]}, False),
        ({"test": ["CMD-SHELL", "true"], "interval": 10**9}, False),
        (None, True),
        ({"test": None, "interval": 10**9}, True),  # overrides only: the image's check runs
    ],
)
def test_docker_when_a_healthcheck_exists(healthcheck, image_has_healthcheck):
    probe = choose_probe(spec([PortSpec(8080)], healthcheck), image_has_healthcheck, None, None, ADDRESS)
    assert probe == Probe("docker", address=ADDRESS)


def test_disabled_healthcheck_falls_back_to_tcp():
    probe = choose_probe(spec([PortSpec(8080)], {"test": ["NONE"]}), True, None, None, ADDRESS)
    assert probe == Probe("tcp", address=ADDRESS, container_port="8080/tcp")


def test_disabled_healthcheck_without_ports_is_running():
    assert choose_probe(spec([], {"test": ["NONE"]}), True, None, None, ADDRESS).kind == "running"


def test_overrides_without_test_and_no_image_check_is_tcp():
    probe = choose_probe(spec([PortSpec(53, "udp")], {"test": None, "interval": 1}), False, None, None, ADDRESS)
    assert probe == Probe("tcp", address=ADDRESS, container_port="53/udp")


def test_running_when_nothing_else():
    assert choose_probe(spec(), False, None, None, ADDRESS) == Probe("running", address=ADDRESS)


def test_describe():
    assert Probe("docker").describe() == "Docker HEALTHCHECK"
    assert Probe("http", path="/health", container_port="8080/tcp").describe() == "HTTP GET /health on port 8080/tcp"
    assert Probe("tcp", container_port="8080/tcp").describe() == "TCP connect to port 8080/tcp"
    assert Probe("running").describe() == "running for %ds" % health.STABLE_SECONDS


# --- wait_healthy with a replaying backend ---------------------------------------------------


def instance(status="running", health_state=None, ports=None, exit_code=None, name="app-blue-1", id="c1"):
    return Instance(
        id=id, name=name, service="proj-app", color="blue", release=1, number=1, status=status,
        health=health_state, image="app:1", config_hash="h", created="now", ports=ports or {}, exit_code=exit_code,
    )


class ReplayBackend:
    """Stand-in for ContainerBackend: refresh() returns the next scripted state of a container."""

    def __init__(self, states, logs="starting\nlistening on 8080\n", health_log="curl: (7) refused"):
        self.states = {key: list(value) for key, value in states.items()}
        self.log_text = logs
        self.health_text = health_log
        self.refreshed = []

    def refresh(self, inst):
        self.refreshed.append(inst.id)
        queue = self.states[inst.id]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def logs(self, inst, tail=20):
        return self.log_text

    def health_log(self, inst):
        return self.health_text


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setattr(health, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(health, "STABLE_SECONDS", 0.05)


def test_docker_probe_waits_for_healthy():
    first = instance(health_state="starting")
    backend = ReplayBackend({"c1": [instance(status="created"), first, instance(health_state="healthy")]})
    messages = []
    result = wait_healthy(backend, [first], Probe("docker"), timeout=5, progress=messages.append)
    assert [i.health for i in result] == ["healthy"]
    assert messages == ["app-blue-1 is healthy (Docker HEALTHCHECK)"]
    assert len(backend.refreshed) == 3


def test_the_first_probes_come_soon_after_the_start_and_later_ones_no_more_often_than_every_half_second(monkeypatch):
    """Issue 15: a fixed 0.5 s between probes saw an app that is healthy in ~1 s up to 0.5 s late."""
    monkeypatch.setattr(health, "POLL_SECONDS", 0.5)
    pauses = []
    monkeypatch.setattr(health.time, "sleep", pauses.append)
    starting = [instance(health_state="starting")] * 6
    backend = ReplayBackend({"c1": [instance(status="created")] + starting + [instance(health_state="healthy")]})
    wait_healthy(backend, [instance()], Probe("docker"), timeout=5)
    assert pauses == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]


def test_results_keep_the_given_order():
    one, two = instance(id="c1", name="a-1"), instance(id="c2", name="a-2")
    backend = ReplayBackend({
        "c1": [instance(id="c1", name="a-1", health_state="starting"), instance(id="c1", name="a-1", health_state="healthy")],
        "c2": [instance(id="c2", name="a-2", health_state="healthy")],
    })
    assert [i.name for i in wait_healthy(backend, [one, two], Probe("docker"), timeout=5)] == ["a-1", "a-2"]


def test_unhealthy_fails_with_the_health_log_and_logs():
    backend = ReplayBackend({"c1": [instance(health_state="unhealthy")]})
    with pytest.raises(FlowError) as info:
        wait_healthy(backend, [instance()], Probe("docker"), timeout=5)
    assert str(info.value) == (
        "Instance app-blue-1 is unhealthy (Docker HEALTHCHECK failed: curl: (7) refused). Last log line: listening on 8080"
    )
    assert info.value.details == {"failed_instance": "app-blue-1", "logs": ["starting", "listening on 8080"]}


def test_unhealthy_without_health_output():
    backend = ReplayBackend({"c1": [instance(health_state="unhealthy")]}, logs="", health_log="")
    with pytest.raises(FlowError) as info:
        wait_healthy(backend, [instance()], Probe("docker"), timeout=5)
    assert str(info.value) == "Instance app-blue-1 is unhealthy (Docker HEALTHCHECK failed: no output)."
    assert info.value.details["logs"] == []


@pytest.mark.parametrize("status", ["exited", "dead"])
def test_exited_instance_fails(status):
    backend = ReplayBackend({"c1": [instance(status=status, exit_code=3)]}, logs="boom\n")
    with pytest.raises(FlowError) as info:
        wait_healthy(backend, [instance()], Probe("running"), timeout=5)
    assert str(info.value) == "Instance app-blue-1 exited with code 3 before becoming healthy. Last log line: boom"


def test_timeout_names_probe_and_state():
    backend = ReplayBackend({"c1": [instance(health_state="starting")]})
    with pytest.raises(FlowError) as info:
        wait_healthy(backend, [instance()], Probe("docker"), timeout=0)
    assert str(info.value).startswith(
        "Instance app-blue-1 did not become healthy within 0s (health_timeout; Docker HEALTHCHECK; "
        "status running, health starting)."
    )


def test_running_probe_needs_a_stable_period():
    backend = ReplayBackend({"c1": [instance()]})
    result = wait_healthy(backend, [instance()], Probe("running"), timeout=5)
    assert result[0].status == "running"
    assert len(backend.refreshed) >= 2  # not ready on the first look


def test_http_or_tcp_probe_fails_when_the_port_is_not_published():
    backend = ReplayBackend({"c1": [instance(ports={})]})
    with pytest.raises(FlowError, match=r"^Instance app-blue-1 does not publish 8080/tcp\."):
        wait_healthy(backend, [instance()], Probe("tcp", container_port="8080/tcp"), timeout=5)


# --- HTTP and TCP probes against real local sockets -----------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server naming
        status = {"/health": 200, "/moved": 302, "/broken": 500}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("path, ok", [("/health", True), ("/moved", True), ("/broken", False), ("/missing", False)])
def test_http_ok(http_port, path, ok):
    assert health._http_ok("127.0.0.1", http_port, path) is ok


def test_http_ok_when_nothing_listens(closed_port):
    assert health._http_ok("127.0.0.1", closed_port, "/health") is False


def test_tcp_ok(http_port, closed_port):
    assert health._tcp_ok("127.0.0.1", http_port) is True
    assert health._tcp_ok("127.0.0.1", closed_port) is False


@pytest.fixture
def accept_then_close_port():
    """Behaves like Docker's userland proxy in front of a container that does not listen."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                connection, _peer = listener.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_tcp_connection_closed_at_once_is_not_ready(accept_then_close_port):
    assert health._tcp_ok("127.0.0.1", accept_then_close_port) is False


def test_wait_healthy_over_http(http_port):
    backend = ReplayBackend({"c1": [instance(ports={"8080/tcp": http_port})]})
    probe = Probe("http", address="127.0.0.1", path="/health", container_port="8080/tcp")
    assert wait_healthy(backend, [instance()], probe, timeout=5)[0].ports == {"8080/tcp": http_port}


def test_wait_healthy_over_http_times_out_on_errors(http_port):
    backend = ReplayBackend({"c1": [instance(ports={"8080/tcp": http_port})]})
    probe = Probe("http", address="127.0.0.1", path="/broken", container_port="8080/tcp")
    with pytest.raises(FlowError, match=r"did not become healthy within 0s \(health_timeout; HTTP GET /broken on port 8080/tcp"):
        wait_healthy(backend, [instance()], probe, timeout=0)


def test_wait_healthy_over_tcp(http_port):
    backend = ReplayBackend({"c1": [instance(ports={"8080/tcp": http_port})]})
    probe = Probe("tcp", address="127.0.0.1", container_port="8080/tcp")
    assert len(wait_healthy(backend, [instance()], probe, timeout=5)) == 1
