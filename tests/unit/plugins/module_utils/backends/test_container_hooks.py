# -*- coding: utf-8 -*-
"""pre_stop hooks on plain containers: every hook runs before any instance stops.

The engine is a stand-in answering the three exec calls and ``stop`` (a unit test; the real engine
runs the hooks in tests/integration/test_service_keys.py).
"""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

HOOK = {"command": ["sh", "-c", "flush"], "user": None, "privileged": False, "working_dir": None, "environment": None}


class StandInEngine:
    def __init__(self, failing_container=None):
        self.failing_container = failing_container
        self.calls = []

    def exec_create(self, container_id, command, **_kwargs):
        self.calls.append(("exec", container_id))
        return {"Id": "exec-" + container_id}

    def exec_start(self, exec_id):
        return b"flushing\ncould not flush\n"

    def exec_inspect(self, exec_id):
        return {"ExitCode": 3 if exec_id == "exec-%s" % self.failing_container else 0}

    def stop(self, container_id, **_kwargs):
        self.calls.append(("stop", container_id))


def instance(number, status="running"):
    return Instance(id="c%d" % number, name="web-blue-%d" % number, service="web", color="blue", release=1,
                    number=number, status=status, health=None, image="app:1", config_hash="h", created="t",
                    pre_stop=(HOOK,))


def backend(engine):
    container_backend = ContainerBackend.__new__(ContainerBackend)  # no engine connection: the stand-in answers
    container_backend.api = engine
    return container_backend


def test_every_pre_stop_hook_runs_before_any_instance_stops():
    engine = StandInEngine()
    backend(engine).stop([instance(1), instance(2), instance(3, status="exited")])
    assert engine.calls == [("exec", "c1"), ("exec", "c2"), ("stop", "c1"), ("stop", "c2"), ("stop", "c3")]


def test_a_failing_pre_stop_hook_stops_no_instance_and_names_the_hook():
    engine = StandInEngine(failing_container="c2")
    with pytest.raises(FlowError) as error:
        backend(engine).stop([instance(1), instance(2)])
    assert str(error.value) == "running pre_stop[0] (sh -c flush) in web-blue-2 exited 3: could not flush."
    assert not [call for call in engine.calls if call[0] == "stop"]
