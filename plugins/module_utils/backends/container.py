# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run service instances as plain containers on one Docker engine.

Instances are named and labelled as ``docker compose`` names and labels its containers
(``<project>-<service>-<color>-<number>``), so ``docker compose ps`` lists them. What a Compose
service becomes in the engine's API is in ``container_spec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import DeploymentContext, Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import short_error
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_files import (
    files_archive,
    files_label,
    labelled_targets,
    retargeted_archive,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_hooks import (
    hook_labels,
    labelled_hooks,
    run_hooks,
    run_pre_start,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_spec import (
    clone_args,
    container_instance,
    create_args,
    endpoint_args,
    first_network,
    host_config_args,
    inherited_aliases,
    namespace_peers,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import EngineBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_COMPOSE_SERVICE,
    LABEL_CONFIG_HASH,
    LABEL_CONTAINER_NUMBER,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PROJECT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    LABEL_SIDE_TARGET,
    LABEL_VOLUME,
)

try:
    import docker.errors
    import requests.exceptions

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec


class ContainerBackend(EngineBackend):
    """Instances are containers of one engine, one per number."""

    # -- listing -------------------------------------------------------------
    def list_instances(self, service: str) -> list[Instance]:
        summaries = self._call(
            "listing containers of %s" % service,
            self.api.containers,
            all=True,
            filters={"label": "%s=%s" % (LABEL_SERVICE, service)},
        )
        instances = []
        for summary in summaries:
            try:
                data = self.api.inspect_container(summary["Id"])
            except docker.errors.NotFound:  # removed between list and inspect
                continue
            instances.append(container_instance(data))
        return sorted(instances, key=lambda i: (i.color, i.number))

    def refresh(self, instance: Instance) -> Instance:
        return container_instance(self._call("inspecting %s" % instance.name, self.api.inspect_container, instance.id))

    def refresh_by_id(self, container_id: str) -> Instance:
        return container_instance(self._call("inspecting %s" % container_id[:12], self.api.inspect_container, container_id))

    def ensure_volumes(self, project: str, compose_project: ComposeProject, spec: ServiceSpec) -> dict[str, str]:
        """Create the named volumes ``spec`` mounts; return compose key -> engine name."""
        names = {}
        for mount in spec.mounts:
            if mount.kind != "volume" or not mount.source:
                continue
            declared = compose_project.volumes[mount.source]
            name = declared["name"] or "%s_%s" % (project, mount.source)
            names[mount.source] = name
            try:
                self.api.inspect_volume(name)
                continue
            except docker.errors.NotFound:
                pass
            if declared["external"]:
                raise FlowError("External volume %s (volumes.%s) does not exist; create it first." % (name, mount.source))
            labels = dict(declared["labels"], **{LABEL_PROJECT: project, LABEL_VOLUME: mount.source})
            self._call(
                "creating volume %s" % name,
                self.api.create_volume,
                name,
                driver=declared["driver"] or "local",
                driver_opts=declared["driver_opts"] or None,
                labels=labels,
            )
        return names

    # -- creating ------------------------------------------------------------
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
        network_names = self.ensure_networks(context.project, compose_project, spec)
        volume_names = self.ensure_volumes(context.project, compose_project, spec)
        archive = files_archive(spec, compose_project)
        compose_service = context.compose_service(color)
        peers = namespace_peers(spec, context.project, compose_project.services if compose_project else {})

        def run(number: int) -> str:
            name = "%s-%s-%d" % (context.project, compose_service, number)
            labels = dict(spec.labels)
            labels.update(
                {
                    LABEL_SERVICE: context.service,
                    LABEL_COLOR: color,
                    LABEL_RELEASE: str(release),
                    LABEL_NUMBER: str(number),
                    LABEL_CONFIG_HASH: config_hash,
                    LABEL_PROJECT: context.project,
                    LABEL_COMPOSE_SERVICE: compose_service,
                    LABEL_CONTAINER_NUMBER: str(number),
                    LABEL_ONEOFF: "False",
                },
                **files_label(spec),
            )
            self._remove_conflicting_name(name, context.service)
            return self._create_and_start(
                name, spec, context.environment(spec, color, release), labels, network_names, volume_names,
                context.publish_address, [context.target, compose_service], peers, archive,
            )

        if spec.engine.pre_start:
            self._run_pre_start(spec, "%s-%s" % (context.project, compose_service),
                                context.environment(spec, color, release), network_names, volume_names, peers)
        return self._all_or_none(run, numbers)

    def _run_pre_start(self, spec: ServiceSpec, prefix: str, environment: dict[str, str], network_names: dict[str, str],
                       volume_names: dict[str, str], peers: dict[str, str]) -> None:
        """The release's pre_start steps, with its instances' mounts and networks (no published port, no alias)."""
        keys = list(spec.networks)
        first = network_names[keys[0]] if keys else None
        others = [(network_names[key], dict(endpoint_args(spec.networks[key], []), aliases=[])) for key in keys[1:]]
        host_config = host_config_args(spec, volume_names, "127.0.0.1", first, peers)
        run_pre_start(self, prefix, spec, environment, host_config, others)

    def clone_instances(self, template: Instance, numbers: list[int]) -> list[Instance]:
        """New instances configured exactly like ``template`` (scaling needs no compose file)."""
        data = self._call("inspecting %s" % template.name, self.api.inspect_container, template.id)
        return self._all_or_none(lambda number: self._clone(template, data, number), numbers)

    def _all_or_none(self, create: Callable[[int], str], numbers: list[int]) -> list[Instance]:
        """The instances ``create(number)`` makes; when one fails, those made before it are removed."""
        created = []
        try:
            for number in numbers:
                created.append(create(number))
        except FlowError:
            for container_id in created:
                self._force_remove(container_id)
            raise
        return [self.refresh_by_id(container_id) for container_id in created]

    def _create_and_start(
        self,
        name: str,
        spec: ServiceSpec,
        environment: dict[str, str],
        labels: dict[str, str],
        network_names: dict[str, str],
        volume_names: dict[str, str],
        publish_address: str,
        aliases: list[str],
        peers: dict[str, str],
        archive: bytes | None = None,
    ) -> str:
        """Create container ``name`` of ``spec`` on its first network, put ``archive`` (its secrets and configs)
        into it, join the others and start it; its ID.

        A service with a ``network_mode`` joins no network: the mode is its whole networking.
        """
        labels = dict(labels, **hook_labels(spec))
        network_keys = list(spec.networks)
        first = network_names[network_keys[0]] if network_keys else None
        host_config = host_config_args(spec, volume_names, publish_address, first, peers)
        networking = self._networking_config(first, endpoint_args(spec.networks[network_keys[0]], aliases)) if first else None
        created = self._call(
            "creating container %s" % name,
            self.api.create_container,
            spec.image,
            name=name,
            environment=environment,
            labels=labels,
            host_config=self.api.create_host_config(**host_config),
            networking_config=networking,
            **create_args(spec),
        )
        others = [(network_names[key], endpoint_args(spec.networks[key], aliases)) for key in network_keys[1:]]
        self._join_and_start(name, created["Id"], others, archive, spec.engine.post_start)
        return created["Id"]

    def _clone(self, template: Instance, data: dict[str, Any], number: int) -> str:
        """Create and start clone ``number`` of ``template`` (whose inspect data is ``data``); its ID."""
        name = "%s-%d" % (template.name.rsplit("-", 1)[0], number)
        self._remove_conflicting_name(name, template.service)
        networks = data["NetworkSettings"].get("Networks") or {}
        first = first_network(data)
        created = self._call(
            "creating container %s" % name,
            self.api.create_container,
            data["Config"]["Image"],
            name=name,
            host_config=dict(data["HostConfig"]),
            networking_config=self._networking_config(first, {"aliases": inherited_aliases(networks[first], template.id)}),
            **clone_args(data["Config"], template.id, number),
        )
        others = [(network, {"aliases": inherited_aliases(endpoint, template.id)}) for network, endpoint in networks.items()
                  if network != first]
        self._join_and_start(name, created["Id"], others, self._template_files(template, data),
                             labelled_hooks(data["Config"].get("Labels") or {}, "post_start"))
        return created["Id"]

    def _template_files(self, template: Instance, data: dict[str, Any]) -> bytes | None:
        """The secrets and configs of ``template`` (inspect data ``data``), as a tar for its clone."""
        targets = labelled_targets(data["Config"].get("Labels") or {})
        copies = [
            (target, self._call("copying %s of %s" % (target, template.name), self.api.get_archive, template.id, target)[0])
            for target in targets
        ]
        return retargeted_archive(copies) if copies else None

    def _networking_config(self, network: str, endpoint: dict[str, Any]) -> dict[str, Any]:
        """The networking config of create_container: one network (the engine's API takes only one there)."""
        return self.api.create_networking_config({network: self.api.create_endpoint_config(**endpoint)})

    def _join_and_start(
        self,
        name: str,
        container_id: str,
        networks: list[tuple[str, dict[str, Any]]],
        archive: bytes | None = None,
        post_start: list[dict[str, Any]] | None = None,
    ) -> None:
        """Put ``archive`` into a created container, connect it to its other (network, endpoint), start it and run
        its ``post_start`` hooks; remove it when that fails."""
        try:
            if archive:
                self._call("writing the secrets and configs of %s" % name, self.api.put_archive, container_id, "/", archive)
            for network, endpoint in networks:
                self._call(
                    "connecting %s to %s" % (name, network),
                    self.api.connect_container_to_network,
                    container_id,
                    network,
                    **endpoint,
                )
            self._call("starting %s" % name, self.api.start, container_id)
            run_hooks(self, name, container_id, post_start or [], "post_start")
        except FlowError:
            self._force_remove(container_id)
            raise

    def _remove_conflicting_name(self, name: str, service: str) -> None:
        """A leftover container of this service with the same name (a killed earlier run) is ours to replace."""
        try:
            data = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return
        labels = data["Config"]["Labels"] or {}
        if labels.get(LABEL_SERVICE) != service:
            raise FlowError("A container named %s already exists and does not belong to service %s." % (name, service))
        self._force_remove(data["Id"])

    # -- lifecycle -------------------------------------------------------------
    def start(self, instances: list[Instance]) -> list[Instance]:
        for instance in instances:
            self._call("starting %s" % instance.name, self.api.start, instance.id)
        return [self.refresh(instance) for instance in instances]

    def stop(self, instances: list[Instance], timeout: int | None = None) -> None:
        # Every pre_stop hook first: one that fails stops nothing, so a stop is whole or not at all.
        for instance in instances:
            if instance.running:
                run_hooks(self, instance.name, instance.id, list(instance.pre_stop), "pre_stop")
        for instance in instances:
            kwargs = {} if timeout is None else {"timeout": timeout}
            self._call("stopping %s" % instance.name, self.api.stop, instance.id, **kwargs)

    def remove(self, instances: list[Instance]) -> None:
        for instance in instances:
            self._force_remove(instance.id)

    def _force_remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True, v=False)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise FlowError("Removing container %s failed: %s." % (container_id[:12], exc.explanation or short_error(exc)))

    def logs(self, instance: Instance, tail: int = 20) -> str:
        try:
            raw = self.api.logs(instance.id, stdout=True, stderr=True, tail=tail)
        except docker.errors.DockerException:
            return ""
        return raw.decode("utf-8", "replace").strip()

    def health_log(self, instance: Instance) -> str:
        """The output of the last Docker healthcheck run, for failure messages."""
        try:
            data = self.api.inspect_container(instance.id)
        except docker.errors.DockerException:
            return ""
        log = ((data["State"].get("Health") or {}).get("Log")) or []
        return (log[-1].get("Output") or "").strip() if log else ""

    # -- side targets ----------------------------------------------------------
    def _side_target_name(self, spec: ServiceSpec, project: str) -> str:
        return spec.container_name or "%s-%s-1" % (project, spec.name)

    def _find_side_target(self, name: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host)." % self.base_url)

    def _side_target_runs(self, found: dict[str, Any]) -> bool:
        return found["State"]["Status"] == "running"

    def _start_side_target(self, found: dict[str, Any], spec: ServiceSpec, name: str) -> None:
        self._call("starting side target %s" % name, self.api.start, found["Id"])

    def _create_side_target(
        self, spec: ServiceSpec, compose_project: ComposeProject, project: str, name: str, publish_address: str
    ) -> None:
        network_names = self.ensure_networks(project, compose_project, spec)
        volume_names = self.ensure_volumes(project, compose_project, spec)
        labels = dict(spec.labels)
        labels.update(
            {
                LABEL_PROJECT: project,
                LABEL_COMPOSE_SERVICE: spec.name,
                LABEL_CONTAINER_NUMBER: "1",
                LABEL_ONEOFF: "False",
                LABEL_SIDE_TARGET: "true",
            },
            **files_label(spec),
        )
        self._create_and_start(
            name, spec, dict(spec.environment), labels, network_names, volume_names, publish_address, [spec.name],
            namespace_peers(spec, project, compose_project.services), files_archive(spec, compose_project),
        )

    def side_target_instance(self, spec: ServiceSpec, project: str) -> Instance:
        name = self._side_target_name(spec, project)
        data = self._call("inspecting side target %s" % name, self.api.inspect_container, name)
        return container_instance(data)
