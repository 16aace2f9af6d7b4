# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compose's lifecycle hooks on plain containers: ``post_start`` and ``pre_stop`` with the engine's exec,
``pre_start`` steps in containers of their own.

The exec'd hooks travel in labels of the container, so a clone (scaling) and a later stop (``flow_stop_old``,
which has no Compose file) run the hooks the container was created with. The ``pre_start`` steps run once
per release, before its instances are created: a clone joins a release whose steps have run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ServiceSpec

LABEL_HOOKS = {"post_start": "dockerflow.post-start", "pre_stop": "dockerflow.pre-stop"}
# The service a pre_start step's container runs for (it is no instance: it has no dockerflow.service label).
LABEL_PRE_START = "dockerflow.pre-start"


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


def run_pre_start(
    engine: Any,
    prefix: str,
    spec: ServiceSpec,
    environment: dict[str, str],
    host_config: dict[str, Any],
    networks: list[tuple[str, dict[str, Any]]],
) -> None:
    """Run ``spec``'s pre_start steps in order, each in a container ``<prefix>-pre-start-<n>`` with the service's
    environment, mounts and networks (``host_config`` is the instances', ``networks`` their other networks), and
    remove it; one that exits non-zero fails, naming it, its exit code and its last output line."""
    for index, step in enumerate(spec.engine.pre_start):
        name = "%s-pre-start-%d" % (prefix, index)
        image = step["image"] or spec.image
        what = "running pre_start[%d] (%s) for %s" % (index, " ".join(step["command"] or [image]), prefix)
        _remove_leftover_step(engine, name)
        created = engine._call(
            what, engine.api.create_container, image, command=step["command"], name=name,
            environment=dict(environment, **(step["environment"] or {})), user=step["user"] or spec.user or "",
            working_dir=step["working_dir"] or spec.working_dir, labels={LABEL_PRE_START: spec.name},
            host_config=engine.api.create_host_config(
                **dict(host_config, port_bindings=None, restart_policy=None, privileged=step["privileged"] or None)),
        )
        try:
            for network, endpoint in networks:
                engine._call(what, engine.api.connect_container_to_network, created["Id"], network, **endpoint)
            engine._call(what, engine.api.start, created["Id"])
            code = engine._call(what, engine.api.wait, created["Id"], timeout=None).get("StatusCode")
            if code != 0:
                lines = engine._call(what, engine.api.logs, created["Id"], tail=5).decode("utf-8", "replace").splitlines()
                raise FlowError("%s exited %s%s." % (what, code, ": %s" % lines[-1].strip() if lines else ""))
        finally:
            engine._force_remove(created["Id"])


def _remove_leftover_step(engine: Any, name: str) -> None:
    """A step's container that an interrupted run left behind goes; a container of that name that is not one fails."""
    found = engine._call("looking for container %s" % name, engine.api.containers, all=True, filters={"name": name})
    for summary in found:
        if "/" + name not in (summary.get("Names") or []):
            continue
        if LABEL_PRE_START not in (summary.get("Labels") or {}):
            raise FlowError("A container named %s already exists and is no pre_start step of Flow's; remove it." % name)
        engine._force_remove(summary["Id"])
