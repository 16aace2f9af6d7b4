# -*- coding: utf-8 -*-
"""proxy_limits: the proxy container's nofile limit, as an option, a container's HostConfig and the engine's refusal."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_limits import (
    MAX_NOFILE,
    SLOTS_ALWAYS_FITTING,
    check_nofile,
    drift,
    refused_nofile,
    server_slots,
    short_of_connections,
    short_of_descriptors,
    ulimits,
)

# What Docker 20.10 (runc 1.1) answered when starting a container with --ulimit nofile beyond what it may give.
RUNC_REFUSAL = ("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container"
                " process: error during container init: error setting rlimits for ready process: error setting rlimit"
                " type 7: operation not permitted: unknown")


@pytest.mark.parametrize("value", [None, 1024, 65536, MAX_NOFILE])
def test_a_limit_in_range_or_none_is_taken(value):
    assert check_nofile(value) == value


@pytest.mark.parametrize("value", [0, 1023, MAX_NOFILE + 1, True, "4096", 1.5])
def test_a_limit_out_of_range_fails_naming_the_option_and_the_range(value):
    with pytest.raises(FlowError, match=r"^proxy_nofile=.* is not valid: use 1,024 to 1,073,741,816 "):
        check_nofile(value)


def test_ulimits_and_drift_compare_what_the_container_was_made_with():
    made = {"HostConfig": {"Ulimits": [{"Name": "core", "Soft": 0, "Hard": 0}] + ulimits(4096)}}
    assert drift(made, 4096) == []
    assert drift(made, 8192) == ["may open 4096 file descriptors, not 8192 (proxy_nofile)"]
    assert drift({"HostConfig": {"Ulimits": None}}, 8192) == [
        "may open the engine's number of file descriptors, not 8192 (proxy_nofile)"]
    assert ulimits(None) is None


def test_the_engines_refusal_is_one_line_naming_the_option():
    error = refused_nofile("starting proxy p failed: %s." % RUNC_REFUSAL, 1048577, "p")
    assert error.msg.startswith("The Docker engine of proxy p cannot give its container proxy_nofile=1048577 (setrlimit:"
                                " operation not permitted)")
    assert refused_nofile("starting proxy p failed: port is already allocated.", 1048577, "p") is None
    assert refused_nofile(RUNC_REFUSAL, None, "p") is None, "no limit asked: the engine's own words"


def test_haproxy_short_of_descriptors_gets_what_to_do():
    said = "HAProxy did not load the new configuration within 30s: [ALERT] Cannot raise FD limit to 64255, limit is 20000."
    assert "(proxy_nofile)" in short_of_descriptors(said)
    assert short_of_descriptors("[ALERT] parsing error") == ""


def show_info(maxconn, ulimit):
    """The lines of HAProxy 3.0.11's ``show info`` these read, among others."""
    return "Name: HAProxy\nVersion: 3.0.11\nUlimit-n: %d\nMaxsock: %d\nMaxconn: %d\nHard_maxconn: %d\n" % (
        ulimit, ulimit, maxconn, maxconn)


def test_the_slots_of_a_rendered_configuration_are_counted():
    routes = [Route("a", "blue", paths=("/a",), colors=("blue", "green")), Route("b", "blue", paths=("/b",))]
    assert server_slots(render(routes, ProxySettings(max_servers=20))[0]) == 3 * 20
    assert server_slots(render([], ProxySettings())[0]) == 0


def test_slots_taking_more_descriptors_than_the_connections_get_a_warning_with_the_figures():
    # 300 routes of two 32-slot colors on an engine that gives 20,000 (benchmarks/README.md): Maxconn 372.
    said = short_of_connections(19200, lambda: show_info(372, 20000), "edge")
    assert said == ("Proxy edge accepts at most 372 connections at once: its 19200 server slots take a file descriptor "
                    "each, of the 20000 it may open, and a connection takes two. Give it more (proxy_nofile) or fewer "
                    "slots (proxy_max_servers).")
    assert short_of_connections(3200, lambda: show_info(8364, 20000), "edge") is None  # 50 routes
    assert short_of_connections(2 * 372, lambda: show_info(372, 20000), "edge") is None  # as many descriptors each way
    assert short_of_connections(19200, lambda: "Unknown command\n", "edge") is None  # an answer without the figures


def test_the_worker_is_not_asked_for_slots_that_always_fit_and_one_that_does_not_answer_fails_nothing():
    def unasked():
        raise AssertionError("show info was asked")

    def leaving():
        raise FlowError("HAProxy's runtime API of edge (127.0.0.1 port 9999) did not answer 'show info': reset")

    assert short_of_connections(SLOTS_ALWAYS_FITTING, unasked, "edge") is None
    assert short_of_connections(19200, leaving, "edge") is None


def test_slots_that_always_fit_are_those_the_least_limit_leaves_room_for():
    """An engine gives at least 1,024 descriptors; HAProxy keeps half of what the slots leave for connections."""
    assert SLOTS_ALWAYS_FITTING <= (1024 - SLOTS_ALWAYS_FITTING) // 2 * 2
