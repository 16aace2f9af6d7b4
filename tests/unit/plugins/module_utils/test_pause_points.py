# -*- coding: utf-8 -*-
"""The pause points the fault and AWX tests hold a module at: inert unless their variable names the point,
a real wait on a real file when it does, and the documented list is the list the steps pass."""

from __future__ import annotations

import ast
import os
import pathlib
import threading
import time

from ansible_collections.dockerflow.flow.plugins.module_utils import pause_points
from ansible_collections.dockerflow.flow.plugins.module_utils.pause_points import PAUSE_POINTS, pause_at

MODULE_UTILS = pathlib.Path(pause_points.__file__).parent


def test_a_point_the_variable_does_not_name_returns_at_once_and_writes_nothing(tmp_path, monkeypatch):
    pause_file = tmp_path / "paused"
    monkeypatch.setenv("DOCKERFLOW_TEST_PAUSE_FILE", str(pause_file))
    monkeypatch.delenv("DOCKERFLOW_TEST_PAUSE_AT", raising=False)
    pause_at("deploy:started")
    monkeypatch.setenv("DOCKERFLOW_TEST_PAUSE_AT", "deploy:healthy")
    pause_at("deploy:started")
    assert list(tmp_path.iterdir()) == []


def test_the_named_point_waits_while_the_pause_file_exists(tmp_path, monkeypatch):
    pause_file = tmp_path / "paused"
    monkeypatch.setenv("DOCKERFLOW_TEST_PAUSE_FILE", str(pause_file))
    monkeypatch.setenv("DOCKERFLOW_TEST_PAUSE_AT", "stop-old:deregistered")
    waiter = threading.Thread(target=pause_at, args=("stop-old:deregistered",), daemon=True)
    waiter.start()
    deadline = time.monotonic() + 10
    while not pause_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pause_file.read_text() == str(os.getpid())
    time.sleep(0.3)
    assert waiter.is_alive(), "it waits while the file exists"
    pause_file.unlink()
    waiter.join(timeout=5)
    assert not waiter.is_alive(), "removing the file resumes it"


def _checkpoints_called(path: pathlib.Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "checkpoint"
                and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    return names


def test_the_documented_points_are_the_ones_the_steps_pass():
    called = set()
    for path in MODULE_UTILS.rglob("*.py"):
        called |= _checkpoints_called(path)
    assert called == set(PAUSE_POINTS)
