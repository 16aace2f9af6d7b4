# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compose's ``post_start`` and ``pre_stop`` hooks on plain containers, with the engine's exec.

The hooks travel in labels of the container, so a clone (scaling) and a later stop (``flow_stop_old``,
which has no Compose file) run the hooks the container was created with.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ServiceSpec

LABEL_HOOKS = {"post_start": "dockerflow.post-start", "pre_stop": "dockerflow.pre-stop"}


def hook_labels(spec: ServiceSpec) -> dict[str, str]:
    """The labels that carry ``spec``'s hooks (none for a service without hooks)."""
    return {label: json.dumps(getattr(spec.engine, kind)) for kind, label in LABEL_HOOKS.items() if getattr(spec.engine, kind)}


def labelled_hooks(labels: dict[str, str], kind: str) -> list[dict[str, Any]]:
    """The ``kind`` hooks (post_start, pre_stop) a container's labels carry."""
    text = (labels or {}).get(LABEL_HOOKS[kind])
    return json.loads(text) if text else []


def run_hooks(engine: Any, name: str, container_id: str, hooks: list[dict[str, Any]], kind: str) -> None:
    """Exec each hook in container ``name`` in order; one that exits non-zero fails, naming it and its exit code.

    ``engine`` is the backend (its ``api`` and ``_call``, which turns engine errors into one line).
    """
    for index, hook in enumerate(hooks):
        what = "running %s[%d] (%s) in %s" % (kind, index, " ".join(hook["command"]), name)
        created = engine._call(
            what, engine.api.exec_create, container_id, hook["command"], user=hook["user"] or "",
            privileged=hook["privileged"], workdir=hook["working_dir"], environment=hook["environment"] or None,
        )
        output = engine._call(what, engine.api.exec_start, created["Id"]) or b""
        code = engine._call(what, engine.api.exec_inspect, created["Id"]).get("ExitCode")
        if code != 0:
            lines = output.decode("utf-8", "replace").strip().splitlines()
            raise FlowError("%s exited %s%s." % (what, code, ": %s" % lines[-1] if lines else ""))
