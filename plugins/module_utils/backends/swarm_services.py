# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Swarm backend's plumbing: a manager's services and tasks, read, changed, and waited for.

``swarm.SwarmBackend`` builds the flows' operations from these; nothing here knows about
releases, stopped counts or undoing a step.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import EngineBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_spec import pinned_image
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_tasks import ACTIVE_STATES, task_instance
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    import docker.errors

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec

TASK_WAIT_SECONDS = 60  # for the orchestrator to create, or to shut down, the tasks of one change
POLL_SECONDS = 0.3
Task = dict[str, Any]  # a task as the Engine API lists it
Service = dict[str, Any]  # a service as the Engine API inspects it: ID, Version, Spec, ...


class SwarmServices(EngineBackend):
    """The services and tasks of one Swarm manager: read, changed, and waited for."""

    NETWORK_DRIVER = "overlay"
    NETWORK_OPTIONS = types.MappingProxyType({"attachable": True, "scope": "swarm"})  # containers may join (the proxy)

    def __init__(self, client: docker.DockerClient) -> None:
        super().__init__(client)
        self._nodes: dict[str, str | None] = {}  # node ID -> the address its tasks publish on
        # task ID -> its service's ID, as listed: a task that a deploy replaced in place can be gone (Swarm prunes
        # its task history) by the time this run asks which service it belonged to.
        self._task_services: dict[str, str] = {}

    # -- networks ----------------------------------------------------------------------------
    def _check_network(self, network: dict[str, Any], key: str) -> None:
        if network.get("Scope") != "swarm":
            raise FlowError(
                "Network %s (networks.%s) is a %s network of one engine; Swarm services need a swarm-scoped "
                "(overlay) network: remove it, or name another one." % (network["Name"], key, network.get("Scope"))
            )

    def ensure_networks(self, project: str, compose_project: ComposeProject | None, spec: ServiceSpec) -> dict[str, str]:
        for key in spec.networks:
            declared = (compose_project.networks if compose_project else {}).get(key) or {}
            if declared.get("driver") not in (None, "overlay") and not declared.get("external"):
                raise FlowError(
                    "networks.%s has driver %s; Swarm services need overlay networks: remove the driver or set "
                    "driver: overlay." % (key, declared["driver"])
                )
        return super().ensure_networks(project, compose_project, spec)

    # -- reading -----------------------------------------------------------------------------
    def _node_address(self, node_id: str | None) -> str | None:
        if not node_id:
            return None
        if node_id not in self._nodes:
            for node in self._call("listing the Swarm nodes", self.api.nodes):
                address = (node.get("Status") or {}).get("Addr")
                if not address or address == "0.0.0.0":
                    address = ((node.get("ManagerStatus") or {}).get("Addr") or "").rpartition(":")[0] or None
                self._nodes[node["ID"]] = address
        return self._nodes.get(node_id)

    def _services(self, filters: dict[str, str]) -> list[Service]:
        return self._call("listing Swarm services", self.api.services, filters=filters)

    def _service(self, service_id: str) -> Service:
        return self._call("inspecting Swarm service %s" % service_id, self.api.inspect_service, service_id)

    def _service_named(self, name: str) -> Service | None:
        return next((s for s in self._services({"name": name}) if s["Spec"]["Name"] == name), None)

    def _tasks(self, service_id: str, current: bool = True) -> list[Task]:
        tasks = self._call("listing the tasks of %s" % service_id, self.api.tasks, filters={"service": service_id})
        tasks = [t for t in tasks if t.get("ServiceID") == service_id]
        if current:
            tasks = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
        return tasks

    def _task_instances(self, service: Service, tasks: list[Task]) -> list[Instance]:
        self._task_services.update((task["ID"], service["ID"]) for task in tasks)
        return [task_instance(task, service["Spec"], self._node_address(task.get("NodeID"))) for task in tasks]

    # -- images ------------------------------------------------------------------------------
    def _pinned(self, image: str) -> str:
        try:
            data = self.api.inspect_image(image)
        except docker.errors.DockerException:
            return image
        return pinned_image(image, data.get("RepoDigests"))

    def _has_docker_health(self, spec: ServiceSpec) -> bool:
        test = (spec.healthcheck or {}).get("test")
        if test:
            return test[0] != "NONE"
        try:  # no test of its own (none, or only new timings): the image's
            return self.image_has_healthcheck(spec.image)
        except FlowError:
            return False

    # -- changing services -------------------------------------------------------------------
    def _put(self, service_id: str, spec: dict[str, Any], what: str) -> None:
        current = self._service(service_id)
        self._call(
            what,
            self.api.update_service,
            service_id,
            current["Version"]["Index"],
            task_template=spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec.get("Labels") or {},
            mode=spec.get("Mode"),
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec.get("EndpointSpec"),
        )

    def _create(self, spec: dict[str, Any]) -> str:
        """Create the service ``spec`` describes; returns its ID."""
        created = self._call(
            "creating Swarm service %s" % spec["Name"],
            self.api.create_service,
            spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec["Labels"],
            mode=spec["Mode"],
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec["EndpointSpec"],
        )
        return created["ID"]

    def _remove_service(self, service_id: str, name: str) -> None:
        try:
            self.api.remove_service(service_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise FlowError("Removing Swarm service %s failed: %s." % (name, exc.explanation or exc))

    # -- waiting for the orchestrator --------------------------------------------------------
    def _wait_tasks(
        self, service_id: str, done: Callable[[list[Task]], bool], what: str, timeout: float = TASK_WAIT_SECONDS
    ) -> list[Task]:
        """Poll the service's current tasks until ``done(tasks)``; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self._tasks(service_id)
            if done(tasks):
                return tasks
            if time.monotonic() >= deadline:
                raise FlowError("Swarm did not %s within %ds." % (what, timeout))
            time.sleep(POLL_SECONDS)

    def _new_tasks(self, service_id: str, known_ids: set[str], count: int, name: str) -> list[Task]:
        tasks = self._wait_tasks(
            service_id, lambda tasks: len([t for t in tasks if t["ID"] not in known_ids]) >= count,
            "create %d task(s) of %s" % (count, name),
        )
        return [t for t in tasks if t["ID"] not in known_ids]

    def _wait_shut_down(self, service_id: str, timeout: float) -> list[Task]:
        """Until no task the service no longer wants still runs; returns those still stopping at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            every = self._tasks(service_id, current=False)
            leaving = [t for t in every if t.get("DesiredState") not in ("running", "ready")
                       and (t.get("Status") or {}).get("State") in ACTIVE_STATES]
            if not leaving or time.monotonic() >= deadline:
                return leaving
            time.sleep(POLL_SECONDS)
