# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choosing the backend: plain containers, or Swarm services when the engine is a Swarm manager."""

from __future__ import annotations

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import EngineBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm import SwarmBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.options import OPTIONS

try:
    import docker
    import docker.errors
    import requests.exceptions

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

BACKENDS = OPTIONS["backend"].choices  # auto, container, swarm


def swarm_role(client: docker.DockerClient) -> str:
    """``manager``, ``worker`` or ``none``: what the engine is in Swarm mode."""
    try:
        swarm = client.info().get("Swarm") or {}
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise FlowError("Cannot ask the Docker engine whether it is a Swarm manager: %s." % exc)
    if swarm.get("LocalNodeState") != "active":
        return "none"
    return "manager" if swarm.get("ControlAvailable") else "worker"


def select_backend(client: docker.DockerClient, choice: str, where: str) -> EngineBackend:
    """The backend ``choice`` (auto | container | swarm) names, for the engine ``client`` reaches at ``where``."""
    if choice not in BACKENDS:
        raise FlowError("backend=%r is not valid: use one of %s." % (choice, ", ".join(BACKENDS)))
    if choice == "container":
        return ContainerBackend(client)
    role = swarm_role(client)
    if role == "manager":
        return SwarmBackend(client)
    if choice == "swarm":
        state = "a Swarm worker" if role == "worker" else "not in Swarm mode"
        raise FlowError(
            "backend=swarm needs a Swarm manager, and the engine at %s (docker_host) is %s: point docker_host at "
            "a manager, or use backend=container." % (where, state)
        )
    return ContainerBackend(client)
