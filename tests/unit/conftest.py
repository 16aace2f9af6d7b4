# -*- coding: utf-8 -*-
"""Shared helpers for the unit tests of ``plugins/module_utils``.

The unit tests run without Docker or Consul: they exercise the pure parts of
the module utilities (parsing, precedence, color rules, probe choice, the CAS
retry loop). Everything that talks to an engine or an agent is covered by
``tests/integration``.

The collection must be importable as ``ansible_collections.dockerflow.flow``
(``make unit`` sets PYTHONPATH to a collections tree that links to this
checkout); ``tests/`` goes on ``sys.path`` so the helpers shared with the
integration tests import as ``support``, ``tests/unit`` so the in-memory stand-ins import as
``fakes`` from every folder of this tree (it mirrors the collection's), and so does the registrator role's
``files/`` so its daemon imports as ``dockerflow_registrator``, as in its image.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, settings

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "unit"))
sys.path.insert(0, os.path.join(os.path.dirname(TESTS), "roles", "registrator", "files"))

# No example database in the working tree, and no timing-based flakiness.
settings.register_profile(
    "dockerflow-unit",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("dockerflow-unit")


@pytest.fixture
def write_file(tmp_path):
    """write_file("a/b.yml", "text") -> path of a dedented file under tmp_path."""

    def write(relative, text, dedent=True):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def compose(tmp_path, write_file):
    """compose(text, environ={}, name="docker-compose.yml") -> a loaded ComposeProject.

    ``environ`` defaults to an empty dict so the tests never depend on the
    environment they run in.
    """
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project

    def load(text, environ=None, name="docker-compose.yml", project_name=None):
        path = write_file(name, text)
        return load_project(path, project_name=project_name, environ={} if environ is None else environ)

    return load
