# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy step: run a new release of the target beside the one that serves.

The release gets the color that does not serve (or ``plain`` without blue-green), as many instances
as serve now unless ``scale`` says otherwise, and must be healthy and registered in Consul before it
is recorded. A failure removes its new instances; the live color keeps serving. Switching the proxy
to it and stopping the old color are the next steps (flow_proxy, flow_stop_old).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import DeploymentContext
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import compose_pull_policy
from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.blue_green import refuse_for_blue_green
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import LockLost, who_am_i
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import record_release
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.health import Probe, choose_probe
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import refuse_a_serving_canary
from ansible_collections.dockerflow.flow.plugins.module_utils.scale import ScaleRequest, parse_scale
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import refuse_beyond_slots
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.builds import (
    PlannedBuild,
    build_images,
    plan_builds,
    predicted_builds,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import Step, now
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.instances import (
    await_healthy,
    current_release_instances,
    deregister,
    discard,
    free_numbers,
    register,
    side_target_names,
    start_side_targets,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import refuse_if_possibly_served

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec


@dataclass
class Wanted:
    """The release the Compose file asks for, checked before the lock is taken."""

    project: ComposeProject
    spec: ServiceSpec
    side_specs: list[ServiceSpec]
    scale_request: ScaleRequest | None
    image_id: str | None
    will_pull: bool
    probe: Probe
    port_key: str | None
    config_hash: str
    builds: dict[str, PlannedBuild]  # by Compose service: the images this deploy builds (steps.builds)


@dataclass
class Placement:
    """Where the release goes, decided under the lock from the state and the running instances."""

    state: dict
    instances: list[Instance]
    color: str
    count: int
    release: int

    @property
    def live(self) -> str | None:
        return self.state.get("live_color")

    @property
    def deployed(self) -> str | None:
        return self.state.get("deployed_color")

    @property
    def replaced(self) -> list[Instance]:
        """Older instances of the new color (blue-green only): they go once the release is recorded."""
        return [i for i in self.instances if i.color == self.color] if self.color != colors.PLAIN else []


class Deploy(Step):
    def run(self) -> dict:
        wanted = self._read_compose()
        with self.flow.lock("deploy"):
            placement = self._place(wanted)
            unchanged = self._already_running(wanted, placement)
            if unchanged is not None:
                return unchanged
            doomed = [placement.color] if placement.color != colors.PLAIN else []
            refuse_if_possibly_served(placement.state, doomed, "deploy would replace")
            refuse_a_serving_canary(placement.state, doomed, "a deploy would replace")
            if self.flow.check_mode:
                return self._predicted(wanted, placement)
            wanted = self._build(wanted, placement)
            start_side_targets(self.flow, wanted.project, wanted.spec, wanted.side_specs, built=wanted.builds)
            new, before, after = self._start(wanted, placement)
            self._remove_replaced(placement)
            if not wanted.port_key:
                self.flow.warnings.append("%s publishes no port: its instances are not registered in Consul."
                                          % self.settings.target)
            return self.flow.result(
                True, "Deployed release %d of %s as %s with %d healthy instance(s)."
                % (placement.release, self.settings.service, placement.color, placement.count),
                before, after, placement.instances, self.flow.backend.list_instances(self.settings.service),
                color=placement.color, release=placement.release, instances=[i.as_dict() for i in new],
            )

    # -- before the lock: what the Compose file asks for ---------------------------------------------------
    def _read_compose(self) -> Wanted:
        settings, backend = self.settings, self.flow.backend
        project = load_project(settings.compose_path, settings.project, env_files=settings.env_files,
                               profiles=settings.profiles)
        spec = project.service(settings.target, "target")
        refuse_for_blue_green(spec)
        side_specs = [project.service(name, "side_targets") for name in side_target_names(settings, project)]
        for wanted_spec in [spec, *side_specs]:
            backend.refuse_unsupported(wanted_spec)
        scale_request = parse_scale(settings.scale, "scale")
        if settings.service_port is not None and settings.service_port not in [p.container_port for p in spec.ports]:
            raise FlowError(
                "service_port=%s is not a published container port of %s (published: %s)."
                % (settings.service_port, settings.target, ", ".join(str(p.container_port) for p in spec.ports) or "none")
            )
        builds = plan_builds(self.flow, project, spec, side_specs)
        if spec.name in builds:  # built under the lock: its inputs' digest stands for the image
            image_id, will_pull, identity = None, False, "build:" + builds[spec.name].digest
        else:
            policy, refresh_after_s = (settings.pull, None) if settings.pull else compose_pull_policy(spec)
            image_id, will_pull = backend.resolve_image(spec.image, policy, self.flow.check_mode, refresh_after_s)
            identity = image_id or spec.image
        has_image_check = backend.image_has_healthcheck(spec.image) if image_id else False
        return Wanted(
            project=project, spec=spec, side_specs=side_specs, scale_request=scale_request,
            image_id=image_id, will_pull=will_pull,
            probe=choose_probe(spec, has_image_check, settings.health_path, settings.health_port, settings.service_address),
            port_key=self._port_key(spec),
            config_hash=hashlib.sha256(("%s|%s" % (spec.config_hash(), identity)).encode()).hexdigest()[:16],
            builds=builds,
        )

    def _build(self, wanted: Wanted, placement: Placement) -> Wanted:
        """Build the planned images (steps.builds) and name them in the specs; a failure changes nothing."""
        if not wanted.builds:
            return wanted
        try:
            names = build_images(self.flow, wanted.builds, placement.release)
        except FlowError as error:
            keeps = (" Live color %s keeps serving." % placement.live) if placement.live else ""
            raise FlowError("%s Nothing was deployed.%s" % (error.msg, keeps), **error.details)
        side_specs = [dataclasses.replace(side, image=names.get(side.name, side.image)) for side in wanted.side_specs]
        spec = wanted.spec
        if spec.name not in names:
            return dataclasses.replace(wanted, side_specs=side_specs)
        spec = dataclasses.replace(spec, image=names[spec.name])
        backend, settings = self.flow.backend, self.settings
        return dataclasses.replace(
            wanted, spec=spec, side_specs=side_specs,
            image_id=backend.resolve_image(spec.image, "never")[0],
            probe=choose_probe(spec, backend.image_has_healthcheck(spec.image), settings.health_path,
                               settings.health_port, settings.service_address),
        )

    def _port_key(self, spec: ServiceSpec) -> str | None:
        """The port registered in Consul: service_port's, else the first published one."""
        if self.settings.service_port is not None:
            for port in spec.ports:
                if port.container_port == self.settings.service_port:
                    return port.key
        return spec.ports[0].key if spec.ports else None

    # -- under the lock: which color, how many, whether anything changes ------------------------------------
    def _place(self, wanted: Wanted) -> Placement:
        state = self.flow.settled_state()
        instances = self.flow.backend.list_instances(self.settings.service)
        color = colors.next_color(state.get("live_color"), state.get("deployed_color"), self.settings.blue_green)
        release = state.get("next_release", 1)
        count = self._count(wanted, state, instances, release)
        asked = "scale=%s" % wanted.scale_request if wanted.scale_request else "release %s" % release
        refuse_beyond_slots(state, self.settings.service, color, count, 0, asked)
        return Placement(state=state, instances=instances, color=color, count=count, release=release)

    def _count(self, wanted: Wanted, state: dict, instances: list[Instance], release: int) -> int:
        """As many instances as serve now (or as recorded, or the Compose replicas, or 1), then scale and max_instances."""
        settings = self.settings
        base = colors.serving_color(state.get("live_color"), state.get("deployed_color"))
        base_running = [i for i in current_release_instances(state, instances, base) if i.running] if base else []
        base_count = (
            len(base_running)
            or ((state["colors"].get(base) or {}).get("instances") if base else None)
            or wanted.spec.deploy.replicas
            or 1
        )
        request = wanted.scale_request
        count = request.apply(base_count, maximum=settings.max_instances) if request else base_count
        if settings.max_instances is not None and count > settings.max_instances:
            # No scale asked: the inherited count is a default, which the bound may lower (and says so).
            self.flow.warnings.append("max_instances=%d caps release %s at %d instance(s) instead of %d."
                                      % (settings.max_instances, release, settings.max_instances, count))
            count = settings.max_instances
        return count

    def _already_running(self, wanted: Wanted, placement: Placement) -> dict | None:
        """The unchanged result when the deployed release runs this configuration healthy (and force is off)."""
        deployed, count = placement.deployed, placement.count
        if self.settings.force or not deployed or (deployed == colors.PLAIN) != (not self.settings.blue_green):
            return None
        current = current_release_instances(placement.state, placement.instances, deployed)
        if len(current) != count or not all(
            i.running and i.health != "unhealthy" and i.config_hash == wanted.config_hash for i in current
        ):
            return None
        release = placement.state["colors"][deployed].get("release")
        return self.flow.result(
            False, "Release %s (%s) already runs this configuration with %d instance(s); use force to redeploy."
            % (release, deployed, count),
            placement.state, placement.state, placement.instances, placement.instances,
            color=deployed, release=release, instances=[i.as_dict() for i in current],
        )

    def _predicted(self, wanted: Wanted, placement: Placement) -> dict:
        """Check mode: what the deploy would do, changing nothing."""
        state, color, release, count = placement.state, placement.color, placement.release, placement.count
        predicted = dict(state, deployed_color=color,
                         live_color=colors.live_after_deploy(color, placement.live, bool(state.get("routes"))))
        after_instances = [i for i in placement.instances if i.color != color or color == colors.PLAIN]
        pulling = " after pulling" if wanted.will_pull else ""
        predicted_builds(self.flow, wanted.builds, release)
        self.flow.progress("would run release %d as %s with %d instance(s)%s" % (release, color, count, pulling))
        return self.flow.result(
            True, "Would deploy release %d of %s as %s with %d instance(s)." % (release, self.settings.service, color, count),
            state, predicted, placement.instances, after_instances, color=color, release=release, instances=[],
        )

    # -- the engine work: start, gate, register, record ----------------------------------------------------------
    def _start(self, wanted: Wanted, placement: Placement) -> tuple[list[Instance], dict, dict]:
        """Run the new instances; returns them healthy and registered, with the state before and after recording
        them. A failure removes them and says that the live color keeps serving."""
        settings, color, release = self.settings, placement.color, placement.release
        numbers = free_numbers([i for i in placement.instances if i.color == color], placement.count)
        context = DeploymentContext(
            project=settings.project, target=settings.target, service=settings.service,
            publish_address=settings.publish_address, register_port=wanted.port_key,
            check_http_path=settings.health_path, legacy_names=settings.legacy_names,
        )
        self.flow.fence("starting release %d as %s" % (release, color))
        if wanted.spec.engine.pre_start:
            self.flow.progress("release %d: running %d pre_start step(s) before its instances"
                               % (release, len(wanted.spec.engine.pre_start)))
        self.flow.progress("starting release %d as %s: %d instance(s) of %s"
                           % (release, color, placement.count, wanted.spec.image))
        new = self.flow.backend.run_instances(wanted.spec, context, color, release, numbers, wanted.config_hash,
                                              compose_project=wanted.project)
        try:
            return self._admit(new, wanted, placement)
        except FlowError as error:
            discard(self.flow, new)
            keeps = (" Live color %s keeps serving." % placement.live) if placement.live else ""
            raise FlowError(
                "Release %d of %s (%s) failed: %s Its new instances were removed.%s"
                % (release, settings.service, color, error.msg, keeps),
                **error.details
            )

    def _admit(self, new: list[Instance], wanted: Wanted, placement: Placement) -> tuple[list[Instance], dict, dict]:
        """The health gate, then Consul, then the state: each only after the one before succeeded."""
        self.flow.checkpoint("deploy:started")
        new = await_healthy(self.flow, new, wanted.probe)
        self.flow.checkpoint("deploy:healthy")
        self.flow.fence("registering the new instances")
        register(self.flow, new, wanted.port_key, self.settings.health_path)
        self.flow.checkpoint("deploy:registered")
        record = {
            "release": placement.release,
            "color": placement.color,
            "image": wanted.spec.image,
            "image_id": wanted.image_id,
            "config_hash": wanted.config_hash,
            "instances": placement.count,
            "time": now(),
            "deployed_by": self.settings.deployed_by or who_am_i(),
        }
        before, after = self.flow.store.update(self.settings.service,
                                               lambda document: self._record(document, wanted, placement, record))
        return new, before, after

    def _record(self, document: dict, wanted: Wanted, placement: Placement, record: dict) -> None:
        color, release = placement.color, placement.release
        document["project"] = self.settings.project
        document["target"] = self.settings.target
        document["deployed_color"] = color
        document["live_color"] = colors.live_after_deploy(color, document.get("live_color"), bool(document.get("routes")))
        document["next_release"] = release + 1
        document["colors"][color] = {
            "release": release,
            "instances": placement.count,
            "image": wanted.spec.image,
            "state": "running",
            "port": wanted.port_key,
            "health_path": self.settings.health_path,
        }
        record_release(document, record)

    def _remove_replaced(self, placement: Placement) -> None:
        """Remove the older instances of the new color, once the new release runs and is recorded."""
        replaced, color = placement.replaced, placement.color
        if not replaced:
            return
        try:
            self.flow.fence("removing the %d %s instance(s) this release replaces" % (len(replaced), color))
        except LockLost as error:
            raise LockLost("Release %d of %s (%s) runs and is recorded, but it left the instances it replaces: %s"
                           % (placement.release, self.settings.service, color, error.msg))
        deregister(self.flow, replaced)
        self.flow.backend.remove(replaced)
        self.flow.progress("removed %d older %s instance(s)" % (len(replaced), color))
