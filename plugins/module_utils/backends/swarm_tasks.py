# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swarm tasks as the flows' instances, pure (no engine calls).

A task is an instance numbered by its slot, in the container states the flows know; a service
scaled to 0 still lists the instances it remembers as stopped (``dockerflow.stopped-replicas``).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_spec import LABEL_DOCKER_HEALTH, stopped_of
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_CONFIG_HASH,
    LABEL_RELEASE,
    LABEL_SERVICE,
)

# Swarm task states as the container states the flows know.
_TASK_STATUS = {
    "new": "created", "allocated": "created", "pending": "created", "assigned": "created", "accepted": "created",
    "preparing": "created", "ready": "created", "starting": "created", "running": "running",
    "complete": "exited", "shutdown": "exited", "failed": "exited", "rejected": "exited", "remove": "exited",
    "orphaned": "dead",
}
ACTIVE_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
_STOPPED_MARK = "/stopped/"


def task_instance(task: dict[str, Any], service_spec: dict[str, Any], node_address: str | None) -> Instance:
    """The Instance of Swarm task ``task`` of the service whose spec is ``service_spec``."""
    container = ((task.get("Spec") or {}).get("ContainerSpec")) or {}
    labels = container.get("Labels") or {}
    status = task.get("Status") or {}
    state = status.get("State") or "new"
    ports = {}
    for port in (status.get("PortStatus") or {}).get("Ports") or []:
        if port.get("PublishedPort"):
            ports["%d/%s" % (port["TargetPort"], port.get("Protocol") or "tcp")] = int(port["PublishedPort"])
    health, error = _task_health(state, status.get("Err") or None, service_spec)
    return Instance(
        id=task["ID"],
        name="%s.%d.%s" % (service_spec.get("Name"), task.get("Slot") or 0, task["ID"]),
        service=labels.get(LABEL_SERVICE, ""),
        color=labels.get(LABEL_COLOR, ""),
        release=_release(labels),
        number=int(task.get("Slot") or 0),
        status=_TASK_STATUS.get(state, "created"),
        health=health,
        image=container.get("Image", ""),
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        created=task.get("CreatedAt", ""),
        ports=ports,
        exit_code=(status.get("ContainerStatus") or {}).get("ExitCode"),
        address=node_address,
        error=error if _TASK_STATUS.get(state) != "running" else None,
    )


def _task_health(state: str, error: str | None, service_spec: dict[str, Any]) -> tuple[str | None, str | None]:
    """(health, error) of a task in ``state``; None for health when its service has no Docker HEALTHCHECK."""
    if (service_spec.get("Labels") or {}).get(LABEL_DOCKER_HEALTH) != "true":
        return None, error
    # Swarm reports a task with a HEALTHCHECK running only once it is healthy, and stops it when it is
    # unhealthy: an app that exits 0 on SIGTERM then ends as "complete", with no error to say why.
    if state == "running":
        return "healthy", error
    if (error and "unhealthy" in error) or (not error and _TASK_STATUS.get(state) in ("exited", "dead")):
        return "unhealthy", error or "it ended before its Docker HEALTHCHECK passed (Swarm stops a task whose check fails)"
    return "starting", error


def _release(labels: dict[str, str]) -> int:
    try:
        return int(labels.get(LABEL_RELEASE) or 0)
    except ValueError:
        return 0


def stopped_instances(service_id: str, service_spec: dict[str, Any], updated_at: str = "") -> list[Instance]:
    """The stopped instances a service scaled to 0 remembers (``dockerflow.stopped-replicas``)."""
    labels = service_spec.get("Labels") or {}
    container = (service_spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return [
        Instance(
            id="%s%s%d" % (service_id, _STOPPED_MARK, number),
            name="%s.%d" % (service_spec.get("Name"), number),
            service=labels.get(LABEL_SERVICE, ""),
            color=labels.get(LABEL_COLOR, ""),
            release=_release(labels),
            number=number,
            status="exited",
            health=None,
            image=container.get("Image", ""),
            config_hash=labels.get(LABEL_CONFIG_HASH, ""),
            created=updated_at,
        )
        for number in range(1, stopped_of(service_spec) + 1)
    ]


def is_stopped_instance(instance: Instance) -> bool:
    return _STOPPED_MARK in instance.id


def service_id_of_stopped(instance: Instance) -> str:
    """The Swarm service a remembered stopped instance belongs to (its ID carries it)."""
    return instance.id.split(_STOPPED_MARK, 1)[0]
