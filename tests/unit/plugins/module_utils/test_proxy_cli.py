# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""proxy_cli against a listener that answers as HAProxy's CLI does (one command line, then it closes).

The real runtime API and master CLI answer in tests/integration/test_proxy_cli.py; here the choice between a
connection of the module's own and docker exec is exercised where a real engine can't: a remote engine, another
host name."""

from __future__ import annotations

import os
import socket
import threading
import types

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_cli, proxy_node
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_cli import (
    LOCAL_ENGINE_URL,
    ask,
    reaches_directly,
    shares_network_namespace,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode


class CliStub:
    """A TCP listener on 127.0.0.1 that answers each connection's first line with ``answer(line)`` and closes."""

    def __init__(self, answer):
        self.answer = answer
        self.lines = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _address = self.server.accept()
            except OSError:
                return
            with connection:
                line = connection.makefile("rb").readline().decode().rstrip("\n")
                self.lines.append(line)
                connection.sendall(self.answer(line).encode())

    def close(self):
        self.server.close()


@pytest.fixture
def haproxy_here():
    info = "Name: HAProxy\nnode: %s\nPid: 8\n" % socket.gethostname()
    stub = CliStub(lambda line: info if line == "show info" else "# name\nblue\n")
    yield stub
    stub.close()


def test_ask_sends_one_command_line_and_returns_the_whole_answer(haproxy_here):
    assert ask("127.0.0.1", haproxy_here.port, "show backend") == "# name\nblue\n"
    assert haproxy_here.lines == ["show backend"]


def test_ask_raises_oserror_when_nothing_listens():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(OSError):
        ask("127.0.0.1", port, "show info")


def container_of(pid):
    """What inspect() gives for a proxy container whose process is ``pid`` (0: not running)."""
    return lambda: {"State": {"Pid": pid}}


# A process in this network namespace: this test's own (the real proxy's: tests/integration/test_proxy_cli.py).
HERE = container_of(os.getpid())


def test_a_local_engine_with_this_hosts_haproxy_is_reached_directly(haproxy_here):
    assert reaches_directly(LOCAL_ENGINE_URL, HERE, "127.0.0.1", haproxy_here.port) is True


def test_a_remote_engine_is_never_reached_directly_even_with_a_proxy_here(haproxy_here):
    for url in ("http://127.0.0.1:2375", "https://docker.example:2376", "http+docker://ssh"):
        assert reaches_directly(url, HERE, "127.0.0.1", haproxy_here.port) is False
    assert haproxy_here.lines == []  # not even asked


def test_a_proxy_in_another_network_namespace_is_not_reached_directly(monkeypatch, haproxy_here):
    """A rootless engine's "host" network, or an execution environment's own: what answers here is another proxy."""
    monkeypatch.setattr(proxy_cli, "shares_network_namespace", lambda pid: False)
    assert reaches_directly(LOCAL_ENGINE_URL, HERE, "127.0.0.1", haproxy_here.port) is False
    assert haproxy_here.lines == []


def test_the_network_namespace_of_a_process_that_cannot_be_read_is_not_ours():
    assert shares_network_namespace(os.getpid()) is True
    assert shares_network_namespace(2 ** 22 + 1) is False  # above the kernel's largest PID: no such process


def test_an_haproxy_of_another_host_name_is_not_the_proxy(monkeypatch, haproxy_here):
    monkeypatch.setattr(proxy_cli.socket, "gethostname", lambda: "an-execution-environment")
    assert reaches_directly(LOCAL_ENGINE_URL, HERE, "127.0.0.1", haproxy_here.port) is False


def test_no_container_or_no_answer_yet_leaves_the_choice_open(haproxy_here):
    assert reaches_directly(LOCAL_ENGINE_URL, container_of(0), "127.0.0.1", haproxy_here.port) is None
    assert reaches_directly(LOCAL_ENGINE_URL, lambda: None, "127.0.0.1", haproxy_here.port) is None
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    assert reaches_directly(LOCAL_ENGINE_URL, HERE, "127.0.0.1", port) is None


def test_a_proxy_asked_over_its_own_connection_is_polled_more_often(monkeypatch):
    node = ProxyNode(types.SimpleNamespace(api=None), ProxySettings())
    slept = []
    monkeypatch.setattr(proxy_node.time, "sleep", slept.append)
    node.pause(0.5)  # not known yet: as through docker exec
    node.direct = True
    node.pause(0.5)
    node.pause(0.01)
    node.direct = False
    node.pause(0.3)
    assert slept == [0.5, proxy_node.DIRECT_POLL_SECONDS, 0.01, 0.3]
