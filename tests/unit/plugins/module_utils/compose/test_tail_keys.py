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


def test_label_file_labels_are_read_and_labels_win(compose, write_file):
    write_file("app.labels", "# comment\ncom.example.tier=web\ncom.example.owner=\"ops team\"\n")
    write_file("more.labels", "com.example.tier=api\ncom.example.extra=${EXTRA}\n")
    text = "services:\n  app:\n    image: app:1\n    label_file: [./app.labels, ./more.labels]\n    labels:\n      com.example.owner: me\n"
    spec = compose(text, environ={"EXTRA": "x"}).service("app")
    assert spec.labels == {"com.example.tier": "api", "com.example.owner": "me", "com.example.extra": "x"}


def test_label_file_missing_is_one_line_naming_it(compose):
    with pytest.raises(FlowError) as caught:
        app(compose, "label_file: ./missing.labels\n")
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(r"service app: label_file: label file \S+/missing\.labels does not exist\.$", message)
