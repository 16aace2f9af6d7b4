# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run service instances as Swarm services, through a manager's API.

A release of color ``C`` is the replicated service ``<service>-C`` (``<service>-r<release>``
without blue-green); its tasks are the instances, numbered by their slot. What the flows do to
instances becomes service-level work:

- start instances: raise the replicas; stop them: lower the replicas and remember how many
  stopped in the service label ``dockerflow.stopped-replicas``, so a service scaled to 0
  still lists that many stopped instances and a rollback scales it back;
- remove instances: lower the replicas (or the stopped count); the service goes with its last
  instance; retire (scale-down): lower the replicas and report the tasks Swarm picked;
- discard (a failed step): put each service back the way the step found it.

How the proxy reaches the tasks (docs/swarm.md): every task publishes its ports in ``host``
mode on an ephemeral port of its node (two replicas on one node do not clash, and no routing
mesh or virtual IP is needed: ``endpoint_mode`` defaults to ``dnsrr``), and the registrator of
that node registers it in the node's Consul agent with the node's address, from the labels
set here (``dockerflow.register-port``, ``dockerflow.check-http``). A task that moves to
another node is registered where it lands; a dead node's tasks go critical with its agent.
The flow only waits until Consul lists every new task passing; the proxy is unchanged.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import DeploymentContext, Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_files import SwarmFiles
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_services import (
    TASK_WAIT_SECONDS,
    Service,
    SwarmServices,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_spec import (
    LABEL_DOCKER_HEALTH,
    build_service_spec,
    refuse_swarm_unsupported,
    replicas_of,
    service_name,
    stopped_of,
    with_replicas,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_tasks import (
    is_stopped_instance,
    service_id_of_stopped,
    stopped_instances,
    task_instance,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_CHECK_HTTP,
    LABEL_COLOR,
    LABEL_COMPOSE_SERVICE,
    LABEL_CONFIG_HASH,
    LABEL_LEGACY_NAMES,
    LABEL_PROJECT,
    LABEL_REGISTER_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    LABEL_SIDE_TARGET,
)

try:
    import docker.errors

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec


class SwarmBackend(SwarmServices, SwarmFiles):
    """Instances are the tasks of Swarm services; every call goes to one manager."""

    registration_owner = "registrator"
    builds_need_registry = True

    def __init__(self, client: docker.DockerClient) -> None:
        super().__init__(client)
        # service ID -> its spec before this run changed it (None: this run created it)
        self._undo: dict[str, dict[str, Any] | None] = {}

    # -- instances ---------------------------------------------------------------------------
    def list_instances(self, service: str) -> list[Instance]:
        instances = []
        for entry in self._services({"label": "%s=%s" % (LABEL_SERVICE, service)}):
            instances.extend(self._task_instances(entry, self._tasks(entry["ID"])))
            instances.extend(stopped_instances(entry["ID"], entry["Spec"], entry.get("UpdatedAt", "")))
        return sorted(instances, key=lambda i: (i.color, i.number))

    def refresh(self, instance: Instance) -> Instance:
        if is_stopped_instance(instance):
            return instance
        task = self._call("inspecting task %s" % instance.name, self.api.inspect_task, instance.id)
        service = self._service(task["ServiceID"])
        return task_instance(task, service["Spec"], self._node_address(task.get("NodeID")))

    def _service_of(self, instance: Instance) -> str:
        if is_stopped_instance(instance):
            return service_id_of_stopped(instance)
        if instance.id in self._task_services:
            return self._task_services[instance.id]
        task = self._call("inspecting task %s" % instance.name, self.api.inspect_task, instance.id)
        return task["ServiceID"]

    def _by_service(self, instances: list[Instance]) -> dict[str, tuple[list[Instance], list[Instance]]]:
        """service ID -> (running task instances, stopped instances) among ``instances``."""
        groups = {}
        for instance in instances:
            running, stopped = groups.setdefault(self._service_of(instance), ([], []))
            (stopped if is_stopped_instance(instance) else running).append(instance)
        return groups

    # -- changing replicas, remembering how to undo it ---------------------------------------
    def _remember(self, service_id: str, spec: dict[str, Any]) -> None:
        self._undo.setdefault(service_id, copy.deepcopy(spec))

    def _scale(
        self, service_id: str, running_delta: int, stopped_delta: int, remember: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Change the replicas and the stopped count of a service; returns (spec before, spec after)."""
        service = self._service(service_id)
        before = service["Spec"]
        if remember:
            self._remember(service_id, before)
        replicas = max(0, replicas_of(before) + running_delta)
        stopped = max(0, stopped_of(before) + stopped_delta)
        after = with_replicas(before, replicas, stopped)
        self._put(service_id, after, "scaling %s to %d" % (before["Name"], replicas))
        return before, after

    # -- the Backend interface ---------------------------------------------------------------
    def refuse_unsupported(self, spec: ServiceSpec) -> None:
        refuse_swarm_unsupported(spec)

    def run_instances(
        self,
        spec: ServiceSpec,
        context: DeploymentContext,
        color: str,
        release: int,
        numbers: list[int],
        config_hash: str,
        compose_project: ComposeProject | None = None,
        image_id: str | None = None,
    ) -> list[Instance]:
        """The release as Swarm service ``<service>-<color>``: created, or updated in place; its new tasks."""
        name = service_name(context.service, color, release)
        networks = self.ensure_networks(context.project, compose_project, spec)
        compose_service = context.compose_service(color)
        release_labels = {
            LABEL_SERVICE: context.service,
            LABEL_COLOR: color,
            LABEL_RELEASE: str(release),
            LABEL_CONFIG_HASH: config_hash,
            LABEL_PROJECT: context.project,
            LABEL_COMPOSE_SERVICE: compose_service,
        }
        service_labels = dict(release_labels, **{LABEL_DOCKER_HEALTH: str(self._has_docker_health(spec)).lower()})
        wanted = build_service_spec(
            spec, name, self._pinned(spec.image), len(numbers), service_labels,
            _container_labels(spec, context, release_labels), context.environment(spec, color, release),
            networks, [context.target, compose_service], context.project, compose_project,
        )
        wanted["TaskTemplate"]["ContainerSpec"].update(self.file_references(spec, context.project, compose_project))
        service_id, known = self._create_or_update(wanted, context.service, release)
        service = self._service(service_id)
        return self._task_instances(service, self._new_tasks(service_id, known, len(numbers), name))

    def _create_or_update(self, wanted: dict[str, Any], service: str, release: int) -> tuple[str, set[str]]:
        """Create the Swarm service ``wanted`` names, or put ``wanted`` in place of the older release it runs.

        Returns the service's ID and the tasks it had before (all of them: the new ones are the others).
        """
        name = wanted["Name"]
        existing = self._service_named(name)
        if existing is None:
            service_id = self._create(wanted)
            self._undo.setdefault(service_id, None)
            return service_id, set()
        service_id = existing["ID"]
        if (existing["Spec"].get("Labels") or {}).get(LABEL_SERVICE) != service:
            raise FlowError("A Swarm service named %s already exists and does not belong to service %s."
                            % (name, service))
        self._remember(service_id, existing["Spec"])
        known = {t["ID"] for t in self._tasks(service_id, current=False)}
        if replicas_of(existing["Spec"]):
            # An older release of this (non-live) color still runs: stop it first, so the new spec starts
            # its tasks at once instead of rolling them one by one.
            self._put(service_id, with_replicas(existing["Spec"], 0, 0), "stopping the older release in %s" % name)
        self._put(service_id, wanted, "updating Swarm service %s to release %d" % (name, release))
        return service_id, known

    def clone_instances(self, template: Instance, numbers: list[int]) -> list[Instance]:
        service_id = self._service_of(template)
        known = {t["ID"] for t in self._tasks(service_id, current=False)}
        _before, after = self._scale(service_id, len(numbers), 0, remember=True)
        service = self._service(service_id)
        return self._task_instances(service, self._new_tasks(service_id, known, len(numbers), after["Name"]))

    def start(self, instances: list[Instance]) -> list[Instance]:
        started = []
        for service_id, (running, stopped) in self._by_service(instances).items():
            if running:
                started.extend(self.refresh(instance) for instance in running)
            if not stopped:
                continue
            known = {t["ID"] for t in self._tasks(service_id, current=False)}
            _before, after = self._scale(service_id, len(stopped), -len(stopped), remember=True)
            service = self._service(service_id)
            started.extend(self._task_instances(service, self._new_tasks(service_id, known, len(stopped), after["Name"])))
        return started

    def stop(self, instances: list[Instance], timeout: int | None = None) -> None:
        """Scale down by the running instances given, remembering them as stopped.

        Swarm stops tasks with the service's stop_grace_period (``timeout`` does not apply).
        """
        for service_id, (running, _stopped) in self._by_service(instances).items():
            if running:
                self._scale(service_id, -len(running), len(running))
                self._wait_shut_down(service_id, TASK_WAIT_SECONDS)

    def remove(self, instances: list[Instance]) -> None:
        for service_id, (running, stopped) in self._by_service(instances).items():
            try:
                service = self._service(service_id)
            except FlowError:
                continue  # already gone
            release = (service["Spec"].get("Labels") or {}).get(LABEL_RELEASE)
            # Instances of a release this service no longer runs (deploy replaced it in place) are gone already.
            running = [i for i in running if str(i.release) == release]
            stopped = [i for i in stopped if str(i.release) == release]
            if not (running or stopped):
                continue
            replicas = max(0, replicas_of(service["Spec"]) - len(running))
            remaining_stopped = max(0, stopped_of(service["Spec"]) - len(stopped))
            if replicas == 0 and remaining_stopped == 0:
                self._remove_service(service_id, service["Spec"]["Name"])
            else:
                self._put(service_id, with_replicas(service["Spec"], replicas, remaining_stopped),
                          "scaling %s to %d" % (service["Spec"]["Name"], replicas))

    def retire(self, instances: list[Instance], timeout: int | None = None) -> list[Instance]:
        """Scale down by len(instances): Swarm picks the tasks; returns the ones that went."""
        gone = []
        for service_id, (running, _stopped) in self._by_service(instances).items():
            if not running:
                continue
            service = self._service(service_id)
            before = {t["ID"]: t for t in self._tasks(service_id)}
            _before, after = self._scale(service_id, -len(running), 0)
            wanted = replicas_of(after)
            staying = self._wait_tasks(
                service_id, lambda tasks, wanted=wanted: len(tasks) <= wanted,
                "pick %d task(s) of %s to stop" % (len(running), after["Name"]),
            )
            picked = [task for task_id, task in before.items() if task_id not in {t["ID"] for t in staying}]
            self._wait_shut_down(service_id, TASK_WAIT_SECONDS)
            gone.extend(self._task_instances(service, picked))
        return gone

    def discard(self, instances: list[Instance]) -> None:
        """Put every service this run changed back as it found it (``instances`` are all theirs)."""
        if not self._undo:
            self.remove(instances)
            return
        errors = []
        for service_id in list(self._undo):
            previous = self._undo.pop(service_id)
            try:
                if previous is None:
                    self._remove_service(service_id, service_id)
                else:
                    self._put(service_id, previous, "putting Swarm service %s back" % previous["Name"])
                    # Their registrators deregister the discarded tasks as they stop: done before returning.
                    self._wait_shut_down(service_id, TASK_WAIT_SECONDS)
            except FlowError as error:
                errors.append(error.msg)
        if errors:
            raise FlowError(" ".join(errors))

    def logs(self, instance: Instance, tail: int = 20) -> str:
        if is_stopped_instance(instance):
            return ""
        try:
            url = self.api._url("/tasks/{0}/logs", instance.id)
            response = self.api._get(url, params={"stdout": 1, "stderr": 1, "tail": tail}, stream=False)
            self.api._raise_for_status(response)
            raw = b"".join(self.api._multiplexed_buffer_helper(response))
        except (docker.errors.DockerException, AttributeError, OSError):
            return ""
        return raw.decode("utf-8", "replace").strip()

    def health_log(self, instance: Instance) -> str:
        return instance.error or ""

    # -- side targets ------------------------------------------------------------------------
    def _side_target_name(self, spec: ServiceSpec, project: str) -> str:
        return spec.container_name or "%s-%s" % (project, spec.name)

    def _find_side_target(self, name: str) -> Service | None:
        return self._service_named(name)

    def _side_target_runs(self, found: Service) -> bool:
        return replicas_of(found["Spec"]) > 0

    def _start_side_target(self, found: Service, spec: ServiceSpec, name: str) -> None:
        self._put(found["ID"], with_replicas(found["Spec"], spec.deploy.replicas or 1, 0),
                  "starting side target %s" % name)

    def _create_side_target(
        self, spec: ServiceSpec, compose_project: ComposeProject, project: str, name: str, publish_address: str
    ) -> None:
        networks = self.ensure_networks(project, compose_project, spec)
        labels = {LABEL_PROJECT: project, LABEL_COMPOSE_SERVICE: spec.name, LABEL_SIDE_TARGET: "true"}
        wanted = build_service_spec(
            spec, name, self._pinned(spec.image), spec.deploy.replicas or 1,
            dict(labels, **{LABEL_DOCKER_HEALTH: str(self._has_docker_health(spec)).lower()}),
            dict(spec.labels, **labels), dict(spec.environment), networks, [spec.name], project, compose_project,
        )
        wanted["TaskTemplate"]["ContainerSpec"].update(self.file_references(spec, project, compose_project))
        self._create(wanted)

    def side_target_instance(self, spec: ServiceSpec, project: str) -> Instance:
        name = self._side_target_name(spec, project)
        service = self._service_named(name)
        if service is None:
            raise FlowError("Side target %s has no Swarm service %s." % (spec.name, name))
        tasks = self._wait_tasks(service["ID"], bool, "create a task of side target %s" % name)
        return self._task_instances(service, tasks[:1])[0]


def _container_labels(spec: ServiceSpec, context: DeploymentContext, release_labels: dict[str, str]) -> dict[str, str]:
    """The labels of a release's tasks: the Compose labels, the release's, and what their registrator registers."""
    labels = dict(spec.labels, **release_labels)
    if context.register_port:
        labels[LABEL_REGISTER_PORT] = context.register_port
        if context.check_http_path:
            labels[LABEL_CHECK_HTTP] = context.check_http_path
        if context.legacy_names:
            labels[LABEL_LEGACY_NAMES] = "true"
    return labels
