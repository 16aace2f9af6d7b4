# -*- coding: utf-8 -*-
"""Asking the proxy whether it still sends requests to instances that left Consul (issue 15), and the fixed
wait a step keeps when it cannot ask.

The runtime API's and master CLI's answers are recorded shapes of HAProxy 3.0's (``show stat <backend> 4 -1``:
a server HAProxy drops for DNS shows ``MAINT (resolution)`` and an empty ``addr``; ``show proc``); the real
proxy dropping a real instance under load is tests/integration/test_proxy.py
(``test_scaling_down_asks_the_proxy_and_waits_a_fixed_time_only_when_it_cannot``).
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_rotation
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import workers
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_rotation import (
    checked_endpoints,
    servers_in_rotation,
    wait_out_of_rotation,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import Registrar
from ansible_collections.dockerflow.flow.plugins.module_utils.steps import instances as step_instances
from fakes import FakeConsulAPI, FakeConsulClient

BACKEND = "be_books-app_blue"
HEADER = "# pxname,svname,qcur,qmax,scur,smax,status,addr"


def stat(*servers):
    """``show stat`` of BACKEND: (name, status, sessions, addr) per server, then the BACKEND line."""
    lines = [HEADER] + ["%s,%s,0,0,%d,0,%s,%s" % (BACKEND, name, scur, status, addr) for name, status, scur, addr in servers]
    return "\n".join(lines + ["%s,BACKEND,0,0,0,0,UP," % BACKEND, ""])


PROC = ("#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "1               master          2 [failed: 0]   0d00h10m00s     3.0.11\n"
        "# workers\n%s               worker          0               0d00h01m00s     3.0.11\n"
        "# old workers\n%s\n# programs\n\n")


def proc(worker="31", old=""):
    return PROC % (worker, ("%s               worker          1               0d00h05m00s     3.0.11" % old) if old else "")


def test_a_server_at_a_leaving_address_is_in_rotation_until_haproxy_takes_it_out_and_its_sessions_end():
    leaving = {"127.0.0.1:32917"}
    seen = set()
    up = stat(("b1", "UP", 0, "127.0.0.1:32917"), ("b2", "UP", 3, "127.0.0.1:32921"), ("b3", "MAINT (resolution)", 0, ""))
    assert servers_in_rotation(up, BACKEND, leaving, seen) == ["b1"] and seen == {"b1"}
    # HAProxy dropped it for DNS (no address any more) while a request to it is still in progress
    draining = stat(("b1", "MAINT (resolution)", 1, ""), ("b2", "UP", 3, "127.0.0.1:32921"))
    assert servers_in_rotation(draining, BACKEND, leaving, seen) == ["b1"]
    done = stat(("b1", "MAINT (resolution)", 0, ""), ("b2", "UP", 3, "127.0.0.1:32921"))
    assert servers_in_rotation(done, BACKEND, leaving, seen) == []
    reused = stat(("b1", "UP", 2, "127.0.0.1:32999"))
    assert servers_in_rotation(reused, BACKEND, leaving, seen) == [], "the slot serves another instance now"
    assert servers_in_rotation(up, "be_other_blue", leaving, set()) == [], "another backend's servers are not asked"


def test_an_answer_without_the_columns_it_needs_cannot_be_read():
    with pytest.raises(FlowError, match="no header"):
        servers_in_rotation("Unknown command", BACKEND, {"127.0.0.1:1"}, set())
    with pytest.raises(FlowError, match="no scur or addr column"):
        servers_in_rotation("# pxname,svname,status\n", BACKEND, {"127.0.0.1:1"}, set())


def test_workers_of_an_earlier_configuration_are_told_from_the_current_one():
    assert workers(proc()) == (["31"], [])
    assert workers(proc("31", old="17")) == (["31"], ["17"])


@pytest.mark.parametrize("endpoints, error", [
    (set(), "no address and port registered"),
    ({"books.example.com:8080"}, "'books.example.com' is no IPv4 address"),
    ({"::1:8080"}, "is no IPv4 address"),
])
def test_instances_the_proxy_cannot_be_asked_about_are_refused(endpoints, error):
    with pytest.raises(FlowError, match=error):
        checked_endpoints(endpoints)
    assert checked_endpoints({"10.0.0.5:32917"}) == {"10.0.0.5:32917"}


class AnsweringNode:
    """The proxy's runtime API and master CLI as a list of answers, one a poll."""

    name = "dockerflow-proxy"

    def __init__(self, stats, procs):
        self.stats, self.procs = list(stats), list(procs)
        self.asked = []

    def runtime(self, command):
        self.asked.append(command)
        return self.stats.pop(0) if len(self.stats) > 1 else self.stats[0]

    def master(self, command):
        assert command == "show proc"
        return self.procs.pop(0) if len(self.procs) > 1 else self.procs[0]

    def pause(self, seconds):  # as ProxyNode.pause when the answers come through docker exec
        time.sleep(seconds)


def test_the_wait_ends_when_the_proxy_dropped_them_and_no_other_worker_can_send_there():
    up = stat(("b1", "UP", 0, "127.0.0.1:32917"))
    dropped = stat(("b1", "MAINT (resolution)", 0, ""))
    node = AnsweringNode([up, dropped, dropped, dropped], [proc(), proc(), proc("40", old="31"), proc("40"), proc("40")])
    waited, busy = wait_out_of_rotation(node, BACKEND, {"127.0.0.1:32917"}, timeout=5, poll=0.01)
    assert busy == [] and waited < 5
    assert node.asked == ["show stat %s 4 -1" % BACKEND] * 3, "dropped, but a reload came between: asked again"


def test_a_proxy_that_keeps_them_is_waited_on_only_as_long_as_the_bound():
    node = AnsweringNode([stat(("b1", "UP", 0, "127.0.0.1:32917"))], [proc()])
    started = time.monotonic()
    waited, busy = wait_out_of_rotation(node, BACKEND, {"127.0.0.1:32917"}, timeout=0.2, poll=0.01)
    assert busy == ["b1"] and 0.2 <= waited < 2 and time.monotonic() - started < 2


class Instance:
    def __init__(self, name, color="blue"):
        self.name, self.color = name, color


class Flow:
    """What quiesce uses of a FlowContext."""

    def __init__(self, reach_proxy=None):
        self.backend = type("Backend", (), {"registration_owner": "flow"})()
        self.settings = type("Settings", (), {"service": "books-app"})()
        self.reach_proxy = reach_proxy
        self.steps, self.warnings = [], []

    def progress(self, line):
        self.steps.append(line)

    def warn(self, line):
        self.warnings.append(line)


ROUTED = {"routes": {"paths": ["/books"], "color": "blue"}}


def test_a_step_that_reaches_the_proxy_waits_until_it_says_so(monkeypatch):
    monkeypatch.setattr(proxy_rotation, "POLL_SECONDS", 0.01)
    node = AnsweringNode([stat(("b1", "UP", 0, "127.0.0.1:32917")), stat(("b1", "MAINT (resolution)", 0, ""))], [proc()])
    flow = Flow(lambda: node)
    started = time.monotonic()
    step_instances.quiesce(flow, ROUTED, [Instance("books-app-blue-2")], {"127.0.0.1:32917"})
    assert time.monotonic() - started < step_instances.DNS_QUIESCE_SECONDS
    assert flow.steps[0].startswith("waited 0.") and flow.steps[0].endswith(
        "s for the proxy to stop sending requests to them: it no longer has them in rotation")


def test_a_proxy_that_cannot_be_asked_gets_the_fixed_wait(monkeypatch):
    monkeypatch.setattr(step_instances, "DNS_QUIESCE_SECONDS", 0.2)

    def unreachable():
        raise FlowError("Cannot reach the proxy's Docker engine: connection refused.")

    for flow in (Flow(), Flow(unreachable)):
        started = time.monotonic()
        step_instances.quiesce(flow, ROUTED, [Instance("books-app-blue-2")], {"127.0.0.1:32917"})
        assert time.monotonic() - started >= 0.2
        assert flow.steps[0].startswith("waited 0s for the proxy to stop sending requests to them (it was not asked: ")
    assert flow.steps[0].endswith("(it was not asked: Cannot reach the proxy's Docker engine: connection refused)")

    def broken():
        raise KeyError("ExitCode")

    other = AnsweringNode([stat(("b1", "MAINT (resolution)", 0, ""))], [proc()])
    for reach, state, reason in (
        (broken, ROUTED, "KeyError: 'ExitCode'"),
        (lambda: other, {"routes": dict(ROUTED["routes"], proxy="public-proxy")},
         "the service is routed by proxy public-proxy, and this run reaches dockerflow-proxy (proxy_name)"),
    ):
        flow = Flow(reach)
        step_instances.quiesce(flow, state, [Instance("books-app-blue-2")], {"127.0.0.1:32917"})
        assert flow.steps == ["waited 0s for the proxy to stop sending requests to them (it was not asked: %s)" % reason]
    assert other.asked == [], "another proxy's answer would say nothing about the one that routes the service"
    unrouted = Flow(unreachable)
    step_instances.quiesce(unrouted, {"routes": {}}, [Instance("books-app-blue-2")], {"127.0.0.1:32917"})
    assert unrouted.steps == [], "nothing routes the service: nothing to wait for"


def test_a_proxy_that_keeps_sending_is_a_warning_not_a_failure(monkeypatch):
    monkeypatch.setattr(proxy_rotation, "QUIESCE_TIMEOUT_SECONDS", 0.1)
    monkeypatch.setattr(proxy_rotation, "POLL_SECONDS", 0.01)
    node = AnsweringNode([stat(("b1", "UP", 0, "127.0.0.1:32917"))], [proc()])
    flow = Flow(lambda: node)
    step_instances.quiesce(flow, ROUTED, [Instance("books-app-blue-2")], {"127.0.0.1:32917"})
    assert flow.warnings and flow.warnings[0].startswith("the proxy still sent requests to b1 ")


def test_the_registered_endpoints_are_read_from_the_agent():
    consul = FakeConsulAPI()
    consul.services["dockerflow-x-1"] = {"ID": "dockerflow-x-1", "Service": "x", "Address": "127.0.0.1", "Port": 32917}
    consul.services["dockerflow-x-2"] = {"ID": "dockerflow-x-2", "Service": "x", "Address": "127.0.0.1", "Port": 32918}
    assert Registrar(FakeConsulClient(consul)).endpoints(["dockerflow-x-1"]) == {"127.0.0.1:32917"}
