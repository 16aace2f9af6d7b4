# -*- coding: utf-8 -*-
"""proxy_limits: the proxy container's nofile limit, as an option, a container's HostConfig and the engine's refusal."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_limits import (
    MAX_NOFILE,
    check_nofile,
    drift,
    refused_nofile,
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
