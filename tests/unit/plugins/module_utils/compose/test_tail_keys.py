# -*- coding: utf-8 -*-
"""The last service keys of issue 12: develop, label_file, include, the network attachment keys,
blkio_config, credential_spec and the lifecycle hooks (what the reader makes of them).

What the container backend makes of them is in backends/test_container_spec.py; that the engine
takes them, in tests/integration/test_service_keys.py.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def app(compose, body, extra=""):
    """The spec of service ``app`` (image app:1) with ``body`` under it; ``extra`` is more of the file."""
    text = "services:\n  app:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(body), "    ") + extra
    return compose(text).service("app")


def test_develop_is_accepted_and_reaches_nothing(compose):
    plain = app(compose, "command: run\n")
    spec = app(compose, "command: run\ndevelop:\n  watch:\n    - path: ./src\n      action: rebuild\n")
    assert spec == plain
    assert spec.config_hash() == plain.config_hash()
