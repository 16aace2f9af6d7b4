# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live colors' map (live_map): what a configuration carries, and one swap of the worker's map. A real
worker's swap: tests/integration/test_proxy.py."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import (
    LIVE_MAP_FILE,
    PAYLOAD_BYTES,
    LiveMap,
    config_generation,
    map_lines,
    reported_generation,
    swap,
)


def routes(count, color="blue"):
    return [Route("service-%04d" % number, color, paths=("/s%d/" % number,), colors=("blue", "green"))
            for number in range(count)]


class Runtime:
    """HAProxy's runtime API as swap() talks to it: the commands it got, and its answers."""

    def __init__(self, refuse=""):
        self.commands = []
        self.refuse = refuse  # an answer for the commands that start with it

    def __call__(self, command):
        self.commands.append(command)
        if self.refuse and command.startswith(self.refuse):
            return "Unknown map identifier. Please use #<id> or <file>.\n\n"
        return "New version created: 7\n\n" if command.startswith("prepare map") else "\n"


def test_a_swap_of_1000_routes_goes_in_payloads_below_the_runtime_api_s_buffer_and_one_commit():
    config, generation = render(routes(1000, "green"), ProxySettings())
    runtime = Runtime()
    swap(runtime, LiveMap.of_config(config))
    assert runtime.commands[0] == "prepare map %s" % LIVE_MAP_FILE
    assert runtime.commands[-1] == "commit map @7 %s" % LIVE_MAP_FILE
    adds = runtime.commands[1:-1]
    assert len(adds) >= 3 and all(add.startswith("add map @7 %s <<\n" % LIVE_MAP_FILE) for add in adds)
    assert all(len(add.split("<<\n", 1)[1]) <= PAYLOAD_BYTES + 1 for add in adds)
    sent = [line for add in adds for line in add.split("<<\n", 1)[1].splitlines()]
    assert sent == map_lines(config) and sent[0] == ".generation %s" % generation and len(sent) == 2002


def test_a_refused_map_change_is_one_line_and_commits_nothing():
    config, _generation = render(routes(2), ProxySettings())
    runtime = Runtime(refuse="add map")
    with pytest.raises(FlowError, match=r"^HAProxy's runtime API refused a change of live-colors.map: Unknown map "
                                        r"identifier. Please use #<id> or <file>.$"):
        swap(runtime, LiveMap.of_config(config))
    assert not any(command.startswith("commit") for command in runtime.commands)


def test_the_generation_is_read_from_the_worker_s_map_and_from_an_earlier_release_s_marker():
    assert reported_generation('type=str, case=sensitive, found=yes, idx=tree, key=".generation", value="ab12", '
                               'type="str"\n') == "ab12"
    assert reported_generation("type=str, case=sensitive, found=no, idx=tree\n") is None
    assert reported_generation("Unknown map identifier. Please use #<id> or <file>.\n") is None
    assert config_generation("backend x\nbackend be_dockerflow_generation_0123abcd\n") == "0123abcd"
    assert config_generation(None) is None


def test_the_worker_s_listed_map_is_read_back_as_the_one_the_configuration_carries():
    config, _generation = render(routes(3), ProxySettings())
    listed = "".join("0x55d4c1a0%04x %s\n" % (index, line) for index, line in enumerate(map_lines(config)))
    assert LiveMap.of_answer(listed) == LiveMap.of_config(config) and LiveMap.of_answer(listed).body
    assert LiveMap.of_answer("Unknown map identifier. Please use #<id> or <file>.\n\n") is None
