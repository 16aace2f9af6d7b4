# -*- coding: utf-8 -*-
"""The registrator's own HTTP clients: the Docker Engine API over a unix socket and the Consul
agent API, with the engine's API version negotiated, the event stream, and every failure
turned into a one-line message naming the address.

The servers are small in-process HTTP servers on real sockets that answer like an engine and
an agent (the requests and responses below are what the client sends and parses); the daemon
against the real engine and Consul is tests/integration/test_registrator.py.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import socketserver
import threading
import urllib.parse

import pytest

import dockerflow_registrator as reg
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from dockerflow_registrator.docker_engine import _message
from test_registrator import container

RUNNING = container(name="web", cid="a" * 64)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers from ``self.server.routes``: (method, path) -> (status, headers, body or list of event lines)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "test"

    def _answer(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        self.server.requests.append((method, self.path, dict(self.headers), body))
        status, headers, payload = self.server.routes.get((method, path), (404, {}, {"message": "no such thing"}))
        if isinstance(payload, list):  # an event stream, chunked as the engine sends it, then its end
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in payload:
                chunk = (json.dumps(line) + "\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
            return
        data = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server naming
        self._answer("GET")

    def do_PUT(self):  # noqa: N802 - http.server naming
        self._answer("PUT")


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TCPHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(server):
    server.routes, server.requests = {}, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


@pytest.fixture
def engine(tmp_path):
    """An engine on a unix socket, at API version 1.41."""
    path = str(tmp_path / "docker.sock")
    server = serve(UnixHTTPServer(path, Recorder))
    server.url = "unix://" + path
    server.routes[("GET", "/_ping")] = (200, {"API-Version": "1.41"}, b"OK")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def agent():
    server = serve(TCPHTTPServer(("127.0.0.1", 0), Recorder))
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    server.routes[("GET", "/v1/agent/services")] = (200, {}, {})
    yield server
    server.shutdown()
    server.server_close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the engine -----------------------------------------------------------------------------


def test_the_engine_is_spoken_to_at_its_own_api_version(engine):
    engine.routes[("GET", "/v1.41/containers/json")] = (200, {}, json.dumps([{"Id": RUNNING["Id"]}]).encode())
    engine.routes[("GET", "/v1.41/containers/%s/json" % RUNNING["Id"])] = (200, {}, RUNNING)
    engine.routes[("GET", "/v1.41/version")] = (200, {}, {"ApiVersion": "1.41", "Version": "20.10.24"})
    docker = reg.DockerAPI(engine.url)
    assert docker.running_container_ids() == [RUNNING["Id"]]
    assert docker.api_version == "1.41" and docker.prefix == "/v1.41"
    assert docker.inspect(RUNNING["Id"])["Name"] == "/web"
    assert docker.inspect("gone") is None  # 404: the container went away meanwhile
    assert docker.version()["Version"] == "20.10.24"
    assert [request[1] for request in engine.requests][:2] == ["/_ping", "/v1.41/containers/json"]


def test_an_engine_without_a_version_header_is_spoken_to_unversioned(engine):
    engine.routes[("GET", "/_ping")] = (200, {}, b"OK")
    engine.routes[("GET", "/containers/json")] = (200, {}, json.dumps([]).encode())
    docker = reg.DockerAPI(engine.url)
    assert docker.running_container_ids() == [] and docker.api_version is None and docker.prefix == ""


def test_the_event_stream_yields_each_event_and_ends_with_the_connection(engine):
    events = [{"Action": "start", "Actor": {"ID": "a" * 64}}, {"status": "die", "id": "b" * 64}]
    engine.routes[("GET", "/v1.41/events")] = (200, {"Content-Type": "application/json"}, events)
    stream = reg.DockerAPI(engine.url).events()
    assert [reg.event_container(event) for event in stream] == [("a" * 64, "start"), ("b" * 64, "die")]
    stream.close()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(engine.requests[-1][1]).query)
    assert json.loads(query["filters"][0]) == {"type": ["container"], "event": list(reg.EVENT_ACTIONS)}


@pytest.mark.parametrize(
    "route, call, message",
    [
        (("GET", "/_ping"), lambda d: d.negotiate(), "answered /_ping with HTTP 500"),
        (("GET", "/v1.41/containers/json"), lambda d: d.running_container_ids(),
         "refused /containers/json: HTTP 500 engine on fire"),
        (("GET", "/v1.41/events"), lambda d: d.events(), "refused the event stream: HTTP 500 engine on fire"),
    ],
)
def test_engine_errors_say_which_engine_and_what(engine, route, call, message):
    docker = reg.DockerAPI(engine.url)
    if route != ("GET", "/_ping"):
        docker.negotiate()
    engine.routes[route] = (500, {}, {"message": "engine on fire"})
    with pytest.raises(FlowError) as caught:
        call(docker)
    assert caught.value.msg.startswith("The Docker engine at %s " % engine.url) and message in caught.value.msg


def test_an_engine_that_is_not_there_is_named(tmp_path):
    url = "unix://%s" % (tmp_path / "missing.sock")
    with pytest.raises(FlowError, match=re.escape("Cannot reach the Docker engine at %s while requesting /_ping" % url)):
        reg.DockerAPI(url).running_container_ids()
    port = closed_port()
    expected = r"Cannot reach the Docker engine at tcp://127\.0\.0\.1:%d while requesting /_ping" % port
    with pytest.raises(FlowError, match=expected):
        reg.DockerAPI("tcp://127.0.0.1:%d" % port).negotiate()


@pytest.mark.parametrize("url", ["https://10.0.0.5:2376", "unix://", "tcp://", "ssh://host"])
def test_engine_addresses_the_registrator_cannot_use_are_refused(url):
    with pytest.raises(FlowError, match=re.escape("is not valid: use unix:///var/run/docker.sock or tcp://HOST:PORT")):
        reg.DockerAPI(url)


def test_error_bodies_become_their_message_or_their_text():
    assert _message(b'{"message": "no such image"}') == "no such image"
    assert _message(b"plain failure\n") == "plain failure"


# -- the Consul agent -----------------------------------------------------------------------


def test_the_agent_lists_registers_and_deregisters_with_the_token(agent):
    consul = reg.ConsulAgent(agent.url, token="s3cret")
    agent.routes[("GET", "/v1/agent/services")] = (200, {}, {"node1:web:8080": {"ID": "node1:web:8080"}})
    agent.routes[("PUT", "/v1/agent/service/register")] = (200, {}, None)
    agent.routes[("PUT", "/v1/agent/service/deregister/node1%3Aweb%3A8080")] = (200, {}, None)  # the ID is quoted
    assert list(consul.services()) == ["node1:web:8080"]
    consul.register({"ID": "node1:web:8080", "Name": "web"})
    consul.deregister("node1:web:8080")
    methods = [(method, path) for method, path, _headers, _body in agent.requests]
    assert methods == [("GET", "/v1/agent/services"), ("PUT", "/v1/agent/service/register"),
                       ("PUT", "/v1/agent/service/deregister/node1%3Aweb%3A8080")]
    assert all(headers.get("X-Consul-Token") == "s3cret" for _method, _path, headers, _body in agent.requests)
    assert json.loads(agent.requests[1][3]) == {"ID": "node1:web:8080", "Name": "web"}


@pytest.mark.parametrize(
    "status, body, message",
    [
        (403, b"Permission denied", "denied listing agent services: the ACL token (CONSUL_HTTP_TOKEN) lacks the permission."),
        (500, b"agent is sad\nmore", "refused listing agent services: HTTP 500 agent is sad."),
    ],
)
def test_agent_errors_say_which_agent_and_what(agent, status, body, message):
    agent.routes[("GET", "/v1/agent/services")] = (status, {}, body)
    with pytest.raises(FlowError) as caught:
        reg.ConsulAgent(agent.url).services()
    assert caught.value.msg == "Consul at %s %s" % (agent.url, message)


def test_an_agent_that_is_not_there_and_bad_addresses_are_named():
    port = closed_port()
    with pytest.raises(FlowError, match=r"Cannot reach Consul at http://127\.0\.0\.1:%d while listing agent services" % port):
        reg.ConsulAgent("http://127.0.0.1:%d" % port).services()
    for address in ("ftp://consul:8500", "http://bad host:8500"):
        with pytest.raises(FlowError, match="is not valid: expected http\\(s\\)://HOST:PORT"):
            reg.ConsulAgent(address)
    with pytest.raises(FlowError, match="has an invalid port"):
        reg.ConsulAgent("http://consul:99999")
    assert reg.ConsulAgent("consul.local").base == "http://consul.local:8500"
    assert reg.ConsulAgent("https://[fd00::1]").base == "https://[fd00::1]:443"


# -- the command line -----------------------------------------------------------------------


def test_once_registers_the_running_containers_and_exits(engine, agent, monkeypatch, capsys):
    engine.routes[("GET", "/v1.41/containers/json")] = (200, {}, json.dumps([{"Id": RUNNING["Id"]}]).encode())
    engine.routes[("GET", "/v1.41/containers/%s/json" % RUNNING["Id"])] = (200, {}, RUNNING)
    agent.routes[("PUT", "/v1/agent/service/register")] = (200, {}, None)
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "t0ken")
    code = reg.main(["--once", "--ip", "10.0.0.5", "--node", "node1", "--consul", agent.url, "--docker", engine.url])
    assert code == 0
    registered = json.loads(agent.requests[-1][3])
    assert (registered["ID"], registered["Address"], registered["Port"]) == ("node1:web:8080", "10.0.0.5", 32768)
    assert agent.requests[-1][2]["X-Consul-Token"] == "t0ken"
    assert "resync: 1 running containers, 1 registrations (1 registered, 0 removed)" in capsys.readouterr().out


def test_the_command_line_refuses_what_it_cannot_use(agent, capsys, tmp_path):
    assert reg.main(["--once", "--ip", "10.0.0.5", "--consul", "ftp://x", "--docker", "unix:///x"]) == 2
    assert "error: consul address 'ftp://x' is not valid" in capsys.readouterr().out
    missing = "unix://%s" % (tmp_path / "missing.sock")
    assert reg.main(["--once", "--ip", "10.0.0.5", "--consul", agent.url, "--docker", missing]) == 1
    assert "error: Cannot reach the Docker engine" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        reg.parse_args(["--ip", "10.0.0.5", "--resync", "0"])
    assert "--resync must be at least 1" in capsys.readouterr().err
