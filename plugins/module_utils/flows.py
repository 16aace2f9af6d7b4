# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow steps: deploy, scale, stop-old and info.

Rules every step keeps:
- the live color is never stopped, removed or replaced;
- a step that fails undoes what it started and leaves state as it was;
- state is written once, with check-and-set, after the engine work succeeded;
- two steps on one service never interleave (ServiceLock); check mode takes
  no lock and changes nothing;
- a step confirms it still holds its lock before every engine change
  (``Flow.fence``), and its state writes check the lock's session in the same
  Consul transaction: a run that lost its lock stops, undoes only its own new
  instances and writes nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import DeploymentContext
from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import (
    LockLost,
    ServiceLock,
    StateStore,
    record_release,
    who_am_i,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.health import Probe, choose_probe, wait_healthy
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import Registrar, Registration, service_id_for
from ansible_collections.dockerflow.flow.plugins.module_utils.scale import parse_scale
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import refuse_beyond_slots
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import (
    UNCHECKED,
    PendingSwitch,
    refuse_if_possibly_served,
    refuse_while_unsettled,
    settled_line,
    unchecked_line,
)


@dataclass
class FlowSettings:
    """Resolved options of one flow step (see config.OPTIONS for their sources)."""

    service: str
    project: str | None = None
    target: str | None = None
    compose_path: str | None = None
    side_targets: list = field(default_factory=list)
    pull_side_targets: bool = False
    blue_green: bool = True
    scale: object = None
    max_instances: int | None = None
    pull: str = "missing"
    health_path: str | None = None
    health_port: int | None = None
    health_timeout: int = 120
    service_port: int | None = None
    publish_address: str = "0.0.0.0"
    service_address: str = "127.0.0.1"
    keep_releases: int = 1
    deployed_by: str | None = None
    force: bool = False
    color: str | None = None
    stop_timeout: int | None = None
    lock_timeout: int = 300
    lock_ttl: int = 30
    legacy_names: bool = False


DNS_QUIESCE_SECONDS = 3
REGISTRATION_POLL_SECONDS = 0.5
DEREGISTRATION_WAIT_SECONDS = 30


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Flow:
    def __init__(self, backend, consul_client, settings, check_mode=False):
        self.backend = backend
        self.client = consul_client
        self._locks = []  # the ServiceLocks this flow made; those it holds fence its changes and state writes
        self.store = StateStore(consul_client, fence=self.held_locks)
        self.registrar = Registrar(consul_client, legacy_names=settings.legacy_names)
        self.settings = settings
        self.check_mode = check_mode
        self.steps = []
        self.warnings = []
        # Set by flow_stop_old for a routed service: waits until the proxy finished requests to old colors.
        self.wait_for_drain = None
        # Set by the modules that reach the proxy (flow_stop_old; flow_proxy settles through ProxyFlow itself):
        # settles an interrupted switch, document -> document (switch_intent, proxy_flow.proxy_reconciler).
        self.switch_reconciler = None
        self.reconciled = {}  # service -> how an interrupted switch was settled (or not): the result's ``reconciled``

    # -- helpers -----------------------------------------------------------------
    def progress(self, line):
        self.steps.append(line)

    def checkpoint(self, step):
        """Test-only hook for tests/faults, inert unless DOCKERFLOW_TEST_PAUSE_AT names ``step``.

        Then the process writes its pid to DOCKERFLOW_TEST_PAUSE_FILE and waits while that file
        exists, so a fault test can kill it, or stop Consul, at a known step. Steps: deploy:started,
        deploy:healthy, deploy:registered, proxy:switch (the switch's intent recorded, nothing activated),
        proxy:activated (the new configuration runs, the state not committed), stop-old:deregistered.
        """
        path = os.environ.get("DOCKERFLOW_TEST_PAUSE_FILE")
        if not path or os.environ.get("DOCKERFLOW_TEST_PAUSE_AT") != step:
            return
        with open(path + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename(path + ".tmp", path)
        while os.path.exists(path):
            time.sleep(0.1)

    # -- an interrupted proxy switch (switch_intent) --------------------------------------------------
    def _reconciled(self, state):
        """``state`` with an interrupted proxy switch settled first, when this step can ask the proxy;
        otherwise noted, and the step's guard (refuse_if_possibly_served) keeps both colors."""
        if PendingSwitch.of(state) is None:
            return state
        if self.switch_reconciler is not None:
            return self.switch_reconciler(state)
        self.note_unchecked(state, "this module does not reach the proxy")
        return state

    def note_settled(self, service, intent, outcome, serving_generation, after):
        line = settled_line(service, intent, outcome, serving_generation, after.get("live_color"), self.check_mode)
        self.reconciled[service] = dict(intent.as_dict(), outcome=outcome, live_color=after.get("live_color"), msg=line)
        self.progress(line)
        self.warnings.append(line[0].upper() + line[1:] + ".")

    def note_unchecked(self, state, reason):
        intent = PendingSwitch.of(state)
        line = unchecked_line(state["service"], intent, state.get("live_color"), reason)
        self.reconciled[state["service"]] = dict(intent.as_dict(), outcome=UNCHECKED, live_color=state.get("live_color"),
                                                 msg=line)
        self.progress(line)
        self.warnings.append(line)

    def _lock(self, operation, name=None):
        """The lock of this service, or of ``name`` (the proxy locks itself while it renders)."""
        if self.check_mode:
            return _NoLock()
        name = name or self.settings.service
        lock = ServiceLock(
            self.client,
            name,
            timeout=self.settings.lock_timeout,
            ttl=self.settings.lock_ttl,
            operation=operation,
            on_wait=lambda holder: self._note_wait(name, holder),
            on_abandoned=lambda holder, waited: self._note_abandoned(name, holder, waited),
        )
        self._locks.append(lock)
        return lock

    def held_locks(self):
        return [lock for lock in self._locks if lock.held]

    def fence(self, doing):
        """Before an engine change: LockLost unless this run still holds every lock it took (no-op in check mode)."""
        for lock in self.held_locks():
            lock.confirm(doing)

    def _note_wait(self, name, holder):
        line = "waiting for the lock of %s held by %s" % (name, holder or "a finished run (lock-delay)")
        if not self.steps or self.steps[-1] != line:
            self.progress(line)

    def _note_abandoned(self, name, holder, waited):
        line = ("the lock of %s was left by %s, which ended without releasing it (killed, or cut off from Consul); "
                "it expired and this run took it after waiting %.0fs" % (name, holder, waited))
        self.progress(line)
        self.warnings.append(line[0].upper() + line[1:] + ".")

    @staticmethod
    def summary(state, instances):
        per_color = {}
        for instance in instances:
            entry = per_color.setdefault(instance.color, {"running": 0, "stopped": 0})
            entry["running" if instance.running else "stopped"] += 1
        return {
            "live_color": state.get("live_color"),
            "deployed_color": state.get("deployed_color"),
            "instances": per_color,
        }

    def _result(self, changed, msg, state_before, state_after, instances_before, instances_after, **extra):
        before = self.summary(state_before, instances_before)
        after = self.summary(state_after, instances_after)
        result = {
            "changed": changed,
            "msg": msg,
            "service": self.settings.service,
            "live_color": state_after.get("live_color"),
            "deployed_color": state_after.get("deployed_color"),
            "steps": self.steps,
            "diff": {"before": before, "after": after},
        }
        result.update(extra)
        return result

    def _register(self, instances, port_key, health_path):
        if self.backend.registration_owner != "flow":
            self._await_registrations(instances, port_key)
            return
        for instance in instances:
            port = instance.ports.get(port_key) if port_key else None
            if not port:
                continue
            self.registrar.register(
                Registration(
                    service=self.settings.service,
                    service_id=service_id_for(instance.name),
                    address=self.settings.service_address,
                    port=port,
                    color=instance.color,
                    release=instance.release,
                    container=instance.name,
                    check_http_path=health_path,
                    container_port=port_key,
                )
            )
            self.progress("registered %s in Consul as %s (%s:%d)"
                          % (instance.name, self.settings.service, self.settings.service_address, port))

    def _await_registrations(self, instances, port_key):
        """Instances the registrators of their nodes register (Swarm tasks): wait until Consul lists them passing."""
        if not port_key or not instances:
            return
        wanted = {service_id_for(instance.name): instance for instance in instances}
        started = time.monotonic()
        deadline = started + self.settings.health_timeout
        while True:
            missing = sorted(set(wanted) - self.registrar.passing_ids(self.settings.service))
            if not missing:
                break
            if time.monotonic() >= deadline:
                instance = wanted[missing[0]]
                raise FlowError(
                    "Consul does not list %s passing after %ds (health_timeout). The registrator of its node (%s) "
                    "registers it: check that the registrator runs there (role dockerflow.flow.registrator) and that "
                    "the node's Consul agent reaches %s:%s."
                    % (instance.name, self.settings.health_timeout, instance.address or "unknown",
                       instance.address or "the node", instance.ports.get(port_key)),
                    failed_instance=instance.name,
                )
            time.sleep(REGISTRATION_POLL_SECONDS)
        self.progress("Consul lists %d new instance(s) passing, registered by the registrators of their nodes (%.1fs)"
                      % (len(wanted), time.monotonic() - started))

    def _await_deregistrations(self, instances):
        """Registrators deregister the tasks Swarm stopped: wait (bounded) until Consul stops listing them."""
        if self.backend.registration_owner == "flow" or not instances:
            return
        gone = {service_id_for(instance.name) for instance in instances}
        deadline = time.monotonic() + DEREGISTRATION_WAIT_SECONDS
        while gone & self.registrar.passing_ids(self.settings.service):
            if time.monotonic() >= deadline:
                self.warnings.append(
                    "Consul still lists %s as passing %ds after Swarm stopped them: is the registrator of their "
                    "node running?" % (", ".join(sorted(gone)), DEREGISTRATION_WAIT_SECONDS)
                )
                return
            time.sleep(REGISTRATION_POLL_SECONDS)

    def _quiesce(self, state):
        """After deregistering serving instances of a routed service, give the proxy time to see it.

        The proxy learns about instances from Consul DNS (hold time ~1 s, a resolution per second):
        stopping at once would cut requests it still sends there. Registrator-owned instances are
        deregistered only when they stop, so there is nothing to wait for.
        """
        if state.get("routes") and self.backend.registration_owner == "flow":
            time.sleep(DNS_QUIESCE_SECONDS)
            self.progress("waited %ds for the proxy to stop sending requests to them" % DNS_QUIESCE_SECONDS)

    def _deregister(self, instances):
        if self.backend.registration_owner != "flow":
            return  # the registrators deregister instances when they stop
        for instance in instances:
            self.registrar.deregister(service_id_for(instance.name))

    def _discard(self, instances):
        """Undo new instances after a failure; never raises over the original error."""
        for instance in instances:
            try:
                self._deregister([instance])
            except FlowError:
                pass
        try:
            self.backend.discard(instances)
        except FlowError as error:
            self.warnings.append("Undoing the new instances was incomplete: %s" % error.msg)

    @staticmethod
    def _free_numbers(existing, count):
        used = {instance.number for instance in existing}
        numbers, candidate = [], 1
        while len(numbers) < count:
            if candidate not in used:
                numbers.append(candidate)
            candidate += 1
        return numbers

    @staticmethod
    def _current_release_instances(state, instances, color):
        """Instances of ``color`` that belong to its recorded release (plain keeps several releases)."""
        release = (state.get("colors", {}).get(color) or {}).get("release")
        return [i for i in instances if i.color == color and (release is None or i.release == release)]

    def _side_target_names(self, project):
        target = self.settings.target
        names = []
        for name in project.dependencies(target) + list(self.settings.side_targets):
            if name == target:
                raise FlowError("side_targets must not name the target %r itself." % target)
            if name not in project.services:
                raise FlowError(
                    "side_targets: %r is not a service of %s. Services: %s."
                    % (name, project.path, ", ".join(sorted(project.services)))
                )
            for dependency in project.dependencies(name) + [name]:
                if dependency == target:
                    raise FlowError("side target %r depends on the target %r: a cycle." % (name, target))
                if dependency not in names:
                    names.append(dependency)
        return names

    # -- deploy --------------------------------------------------------------------
    def deploy(self):
        settings = self.settings
        project = load_project(settings.compose_path, settings.project)
        spec = project.service(settings.target, "target")
        if spec.container_name:
            raise FlowError(
                "target %s sets container_name, which allows one instance only; remove it "
                "(instances are named <project>-<target>-<color>-<n>)." % settings.target
            )
        side_specs = [project.service(name, "side_targets") for name in self._side_target_names(project)]
        scale_request = parse_scale(settings.scale, "scale")
        if settings.service_port is not None and settings.service_port not in [p.container_port for p in spec.ports]:
            raise FlowError(
                "service_port=%s is not a published container port of %s (published: %s)."
                % (settings.service_port, settings.target, ", ".join(str(p.container_port) for p in spec.ports) or "none")
            )
        image_id, will_pull = self.backend.resolve_image(spec.image, settings.pull, check_mode=self.check_mode)
        has_image_check = self.backend.image_has_healthcheck(spec.image) if image_id else False
        probe = choose_probe(spec, has_image_check, settings.health_path, settings.health_port, settings.service_address)
        port_key = self._port_key(spec)
        config_hash = hashlib.sha256(("%s|%s" % (spec.config_hash(), image_id or spec.image)).encode()).hexdigest()[:16]

        with self._lock("deploy"):
            state = self._reconciled(self.store.read(settings.service)[0])
            instances = self.backend.list_instances(settings.service)
            live, deployed = state.get("live_color"), state.get("deployed_color")
            color = colors.next_color(live, deployed, settings.blue_green)
            base = colors.serving_color(live, deployed)
            base_running = [i for i in self._current_release_instances(state, instances, base) if i.running] if base else []
            base_count = (
                len(base_running)
                or ((state["colors"].get(base) or {}).get("instances") if base else None)
                or spec.deploy.replicas
                or 1
            )
            count = scale_request.apply(base_count, maximum=settings.max_instances) if scale_request else base_count
            if settings.max_instances is not None and count > settings.max_instances:
                # No scale asked: the inherited count is a default, which the bound may lower (and says so).
                self.warnings.append("max_instances=%d caps release %s at %d instance(s) instead of %d."
                                     % (settings.max_instances, state.get("next_release", 1), settings.max_instances, count))
                count = settings.max_instances
            refuse_beyond_slots(state, settings.service, color, count, 0,
                                "scale=%s" % scale_request if scale_request else "release %s" % state.get("next_release", 1))

            current = self._current_release_instances(state, instances, deployed) if deployed else []
            if (
                not settings.force
                and deployed
                and (deployed == colors.PLAIN) == (not settings.blue_green)
                and len(current) == count
                and all(i.running and i.health != "unhealthy" and i.config_hash == config_hash for i in current)
            ):
                release = state["colors"][deployed].get("release")
                return self._result(
                    False,
                    "Release %s (%s) already runs this configuration with %d instance(s); use force to redeploy."
                    % (release, deployed, count),
                    state, state, instances, instances, color=deployed, release=release,
                    instances=[i.as_dict() for i in current],
                )

            refuse_if_possibly_served(state, [color] if color != colors.PLAIN else [], "deploy would replace")
            release = state.get("next_release", 1)
            if self.check_mode:
                predicted = dict(state, deployed_color=color,
                                 live_color=colors.live_after_deploy(color, live, bool(state.get("routes"))))
                after_instances = [i for i in instances if i.color != color or color == colors.PLAIN]
                pulling = " after pulling" if will_pull else ""
                self.progress("would run release %d as %s with %d instance(s)%s" % (release, color, count, pulling))
                return self._result(
                    True, "Would deploy release %d of %s as %s with %d instance(s)." % (release, settings.service, color, count),
                    state, predicted, instances, after_instances, color=color, release=release, instances=[],
                )

            if side_specs:
                self.fence("starting the side targets")
            for side in side_specs:
                outcome = self.backend.ensure_side_target(
                    side, project, settings.project, settings.pull_side_targets, settings.publish_address
                )
                if outcome:
                    self.progress("side target %s %s" % (side.name, outcome))
                if spec.depends_on.get(side.name) == "service_healthy" or any(
                    other.depends_on.get(side.name) == "service_healthy" for other in side_specs
                ):
                    wait_healthy(self.backend, [self.backend.side_target_instance(side, settings.project)],
                                 Probe("docker"), settings.health_timeout, self.progress)

            replaced = [i for i in instances if i.color == color] if color != colors.PLAIN else []
            numbers = self._free_numbers([i for i in instances if i.color == color], count)
            context = DeploymentContext(
                project=settings.project, target=settings.target, service=settings.service,
                publish_address=settings.publish_address, register_port=port_key,
                check_http_path=settings.health_path, legacy_names=settings.legacy_names,
            )
            self.fence("starting release %d as %s" % (release, color))
            self.progress("starting release %d as %s: %d instance(s) of %s" % (release, color, count, spec.image))
            new = self.backend.run_instances(spec, context, color, release, numbers, config_hash, compose_project=project)
            try:
                self.checkpoint("deploy:started")
                new = wait_healthy(self.backend, new, probe, settings.health_timeout, self.progress)
                self.checkpoint("deploy:healthy")
                self.fence("registering the new instances")
                self._register(new, port_key, settings.health_path)
                self.checkpoint("deploy:registered")
                record = {
                    "release": release,
                    "color": color,
                    "image": spec.image,
                    "image_id": image_id,
                    "config_hash": config_hash,
                    "instances": count,
                    "time": _now(),
                    "deployed_by": settings.deployed_by or who_am_i(),
                }

                def mutate(document):
                    document["project"] = settings.project
                    document["target"] = settings.target
                    document["deployed_color"] = color
                    document["live_color"] = colors.live_after_deploy(
                        color, document.get("live_color"), bool(document.get("routes")))
                    document["next_release"] = release + 1
                    document["colors"][color] = {
                        "release": release,
                        "instances": count,
                        "image": spec.image,
                        "state": "running",
                        "port": port_key,
                        "health_path": settings.health_path,
                    }
                    record_release(document, record)

                before, after = self.store.update(settings.service, mutate)
            except FlowError as error:
                self._discard(new)
                keeps = (" Live color %s keeps serving." % live) if live else ""
                raise FlowError(
                    "Release %d of %s (%s) failed: %s Its new instances were removed.%s"
                    % (release, settings.service, color, error.msg, keeps),
                    **error.details
                )
            if replaced:
                try:
                    self.fence("removing the %d %s instance(s) this release replaces" % (len(replaced), color))
                except LockLost as error:
                    raise LockLost("Release %d of %s (%s) runs and is recorded, but it left the instances it replaces: %s"
                                   % (release, settings.service, color, error.msg))
                self._deregister(replaced)
                self.backend.remove(replaced)
                self.progress("removed %d older %s instance(s)" % (len(replaced), color))
            if not port_key:
                self.warnings.append("%s publishes no port: its instances are not registered in Consul." % settings.target)
            instances_after = self.backend.list_instances(settings.service)
            return self._result(
                True,
                "Deployed release %d of %s as %s with %d healthy instance(s)." % (release, settings.service, color, count),
                before, after, instances, instances_after, color=color, release=release,
                instances=[i.as_dict() for i in new],
            )

    def _port_key(self, spec):
        if self.settings.service_port is not None:
            for port in spec.ports:
                if port.container_port == self.settings.service_port:
                    return port.key
        return spec.ports[0].key if spec.ports else None

    # -- scale -------------------------------------------------------------------
    def scale(self):
        settings = self.settings
        scale_request = parse_scale(settings.scale, "scale")
        if scale_request is None:
            raise FlowError("scale is required: %s." % "N, +N or -N")
        if settings.color is not None and settings.color not in colors.ALL_COLORS:
            raise FlowError("color=%r is not valid: use one of %s." % (settings.color, ", ".join(colors.ALL_COLORS)))
        with self._lock("scale"):
            state = self._reconciled(self.store.read(settings.service)[0])
            instances = self.backend.list_instances(settings.service)
            color = settings.color or colors.serving_color(state.get("live_color"), state.get("deployed_color"))
            if not color:
                raise FlowError("Service %s has no release to scale; deploy it first." % settings.service)
            members = self._current_release_instances(state, instances, color)
            if not members:
                raise FlowError("Service %s has no %s instances to scale." % (settings.service, color))
            running = [i for i in members if i.running]
            current = len(running)
            wanted = scale_request.apply(current, maximum=settings.max_instances)
            beyond_slots = refuse_beyond_slots(state, settings.service, color, wanted, current, "scale=%s" % scale_request)
            if beyond_slots:
                self.warnings.append(beyond_slots)
            if wanted == current:
                return self._result(
                    False, "%s (%s) already runs %d instance(s)." % (settings.service, color, current),
                    state, state, instances, instances, color=color, instances_count=current,
                )
            if wanted < current:
                refuse_if_possibly_served(state, [color], "scaling down would stop instances of")
            if self.check_mode:
                predicted = _with_count(state, color, wanted)
                return self._result(
                    True, "Would scale %s (%s) from %d to %d instance(s)." % (settings.service, color, current, wanted),
                    state, predicted, instances, instances, color=color, instances_count=wanted,
                )
            recorded = state["colors"].get(color) or {}
            port_key = recorded.get("port")
            health_path = recorded.get("health_path")
            if wanted > current:
                template = running[0] if running else members[0]
                numbers = self._free_numbers([i for i in instances if i.color == color], wanted - current)
                self.fence("adding %d %s instance(s)" % (len(numbers), color))
                self.progress("adding %d %s instance(s)" % (len(numbers), color))
                new = self.backend.clone_instances(template, numbers)
                try:
                    new = wait_healthy(self.backend, new, self._clone_probe(template, port_key, health_path),
                                       settings.health_timeout, self.progress)
                    self._register(new, port_key, health_path)
                    before, after = self.store.update(settings.service, lambda doc: _set_count(doc, color, wanted))
                except FlowError as error:
                    self._discard(new)
                    raise FlowError(
                        "Scaling %s (%s) to %d failed: %s The new instances were removed; %d keep serving."
                        % (settings.service, color, wanted, error.msg, current),
                        **error.details
                    )
            else:
                victims = sorted(running, key=lambda i: (i.created, i.number), reverse=True)[: current - wanted]
                self.fence("removing %d %s instance(s)" % (len(victims), color))
                self._deregister(victims)
                self._quiesce(state)
                gone = self.backend.retire(victims, timeout=settings.stop_timeout)
                self._await_deregistrations(gone)
                self.progress("removed %s" % ", ".join(i.name for i in gone))
                before, after = self.store.update(settings.service, lambda doc: _set_count(doc, color, wanted))
            instances_after = self.backend.list_instances(settings.service)
            return self._result(
                True, "Scaled %s (%s) from %d to %d instance(s)." % (settings.service, color, current, wanted),
                before, after, instances, instances_after, color=color, instances_count=wanted,
            )

    def _clone_probe(self, template, port_key, health_path):
        address = self.settings.service_address
        if health_path and port_key:
            return Probe("http", address=address, path=health_path, container_port=port_key)
        if template.health is not None:
            return Probe("docker", address=address)
        if port_key:
            return Probe("tcp", address=address, container_port=port_key)
        return Probe("running", address=address)

    # -- stop-old --------------------------------------------------------------------
    def stop_old(self):
        settings = self.settings
        if settings.keep_releases is None or settings.keep_releases < 0:
            raise FlowError("keep_releases=%r is not valid: use 0 or more." % settings.keep_releases)
        with self._lock("stop-old"):
            state = self._reconciled(self.store.read(settings.service)[0])
            refuse_while_unsettled(state, "stop-old cannot tell which color to keep")
            instances = self.backend.list_instances(settings.service)
            live, deployed = state.get("live_color"), state.get("deployed_color")
            promoted = False
            if deployed and deployed != live and not state.get("routes"):
                # Nothing routes this service, so "live" can only mean "what the operator kept":
                # stop-old promotes the newest release, as the original stop-old did.
                newest = [i for i in self._current_release_instances(state, instances, deployed) if i.running]
                if not newest:
                    raise FlowError(
                        "Release %s (%s) of %s has no running instance; refusing to stop the others."
                        % ((state["colors"].get(deployed) or {}).get("release"), deployed, settings.service)
                    )
                live, promoted = deployed, True
            if not live:
                raise FlowError("Service %s has no release; nothing to stop." % settings.service)
            routed = (state.get("routes") or {}).get("color")
            if routed and routed != live:
                # Left by an older version (plain deploys took live_color before a switch): never stop what is routed.
                raise FlowError(
                    "The proxy routes %s to %s, but its state calls %s live; nothing was stopped. Switch with "
                    "flow_proxy first (color=%s to keep serving %s)." % (settings.service, routed, live, routed, routed)
                )
            keep = {i.id for i in self._current_release_instances(state, instances, live)}
            old = [i for i in instances if i.id not in keep]
            releases = sorted({i.release for i in old}, reverse=True)
            kept_releases = set(releases[: settings.keep_releases])
            to_stop = [i for i in old if i.running and i.release in kept_releases]
            to_remove = [i for i in old if i.release not in kept_releases]
            if not (to_stop or to_remove or promoted):
                return self._result(
                    False, "No old release of %s is running." % settings.service, state, state, instances, instances,
                    live_color=live, stopped=[], removed=[],
                )
            stopped_colors = sorted({i.color for i in old if i.color != live})

            def mutate(document):
                document["live_color"] = live
                for color in stopped_colors:
                    if color in document["colors"]:
                        document["colors"][color]["state"] = "stopped"

            if self.check_mode:
                predicted = dict(state, live_color=live)
                after_instances = [i for i in instances if i not in to_remove]
                return self._result(
                    True, "Would stop %d and remove %d old instance(s) of %s." % (len(to_stop), len(to_remove), settings.service),
                    state, predicted, instances, after_instances,
                    stopped=[i.name for i in to_stop], removed=[i.name for i in to_remove],
                )
            self.fence("deregistering the old instances")
            self._deregister(to_stop + to_remove)
            if any(i.color == live for i in to_stop + to_remove):
                self._quiesce(state)  # plain releases share the live backend
            if state.get("routes") and self.wait_for_drain and (to_stop or to_remove):
                waited = self.wait_for_drain()
                self.progress("the proxy drained requests to the old release in %.1fs" % waited)
            self.checkpoint("stop-old:deregistered")
            if to_stop:
                self.fence("stopping %s" % ", ".join(i.name for i in to_stop))
            self.backend.stop(to_stop, timeout=settings.stop_timeout)
            if to_remove:
                self.fence("removing %s" % ", ".join(i.name for i in to_remove))
            self.backend.remove(to_remove)
            before, after = self.store.update(settings.service, mutate)
            if promoted:
                self.progress("%s is now the live color of %s" % (live, settings.service))
            if to_stop:
                self.progress("stopped %s" % ", ".join(i.name for i in to_stop))
            if to_remove:
                self.progress("removed %s" % ", ".join(i.name for i in to_remove))
            instances_after = self.backend.list_instances(settings.service)
            return self._result(
                True,
                "Stopped %d and removed %d old instance(s) of %s; live color %s."
                % (len(to_stop), len(to_remove), settings.service, live),
                before, after, instances, instances_after,
                stopped=[i.name for i in to_stop], removed=[i.name for i in to_remove],
            )

    # -- rollback ------------------------------------------------------------------
    def rollback(self):
        """Start the previous color's kept release again and make it the newest one.

        The proxy switch and stopping the current color are the next steps
        (flow_proxy, flow_stop_old), exactly as after a deploy.
        """
        settings = self.settings
        with self._lock("rollback"):
            state = self._reconciled(self.store.read(settings.service)[0])
            refuse_while_unsettled(state, "a rollback cannot tell which release is the previous one")
            instances = self.backend.list_instances(settings.service)
            current = colors.serving_color(state.get("live_color"), state.get("deployed_color"))
            if current not in colors.BLUE_GREEN_COLORS:
                raise FlowError("Service %s has no blue-green release to roll back from." % settings.service)
            target = colors.other_color(current)
            recorded = state["colors"].get(target) or {}
            members = self._current_release_instances(state, instances, target) if recorded else []
            if not members:
                raise FlowError(
                    "Service %s has no kept %s release to roll back to (keep_releases removed it, or it never ran)."
                    % (settings.service, target)
                )
            if state.get("deployed_color") == target and all(i.running for i in members):
                return self._result(
                    False, "Release %s (%s) of %s already runs." % (recorded.get("release"), target, settings.service),
                    state, state, instances, instances, color=target, release=recorded.get("release"),
                )
            if self.check_mode:
                return self._result(
                    True, "Would start release %s (%s) of %s again." % (recorded.get("release"), target, settings.service),
                    state, dict(state, deployed_color=target), instances, instances, color=target,
                    release=recorded.get("release"),
                )
            stopped = [i for i in members if not i.running]
            if stopped:
                self.fence("starting release %s (%s) again" % (recorded.get("release"), target))
            started = self.backend.start(stopped)
            self.progress("started %s" % ", ".join(i.name for i in started) if started else "the %s release still runs" % target)
            try:
                ready = wait_healthy(
                    self.backend, [self.backend.refresh(i) for i in members if i.running] + started,
                    self._clone_probe(members[0], recorded.get("port"), recorded.get("health_path")),
                    settings.health_timeout, self.progress,
                )
                self._register(ready, recorded.get("port"), recorded.get("health_path"))
            except FlowError as error:
                self._deregister(started)
                self.backend.stop(started, timeout=settings.stop_timeout)
                raise FlowError(
                    "Rollback of %s to %s failed: %s It was stopped again; %s keeps serving."
                    % (settings.service, target, error.msg, current), **error.details
                )
            record = {
                "release": recorded.get("release"),
                "color": target,
                "image": recorded.get("image"),
                "instances": len(members),
                "time": _now(),
                "deployed_by": settings.deployed_by or who_am_i(),
                "rollback_from": current,
            }

            def mutate(document):
                document["deployed_color"] = target
                document["colors"][target] = dict(document["colors"].get(target) or {}, state="running", instances=len(members))
                record_release(document, record)

            try:
                before, after = self.store.update(settings.service, mutate)
            except LockLost as error:
                # Stopping them again could take instances from the run that holds the lock now.
                raise LockLost("Rollback of %s to %s left the instances it started running: %s"
                               % (settings.service, target, error.msg))
            instances_after = self.backend.list_instances(settings.service)
            return self._result(
                True, "Release %s (%s) of %s runs again beside %s; switch the proxy to it, then stop the old color."
                % (recorded.get("release"), target, settings.service, current),
                before, after, instances, instances_after, color=target, release=recorded.get("release"),
                instances=[i.as_dict() for i in ready],
            )

    # -- info --------------------------------------------------------------------
    def info(self):
        state, index = self.store.read(self.settings.service)
        instances = self.backend.list_instances(self.settings.service)
        registered = self.registrar.health(self.settings.service)
        by_color = {}
        for instance in instances:
            entry = instance.as_dict()
            entry["consul"] = registered.get(service_id_for(instance.name), "not registered")
            by_color.setdefault(instance.color, []).append(entry)
        return {
            "changed": False,
            "service": self.settings.service,
            "exists": index != 0 or bool(instances),
            "live_color": state.get("live_color"),
            "deployed_color": state.get("deployed_color"),
            "colors": {
                color: dict(state["colors"].get(color) or {}, members=members) for color, members in by_color.items()
            },
            "releases": state.get("releases", []),
            "routes": state.get("routes", {}),
            "state": state,
        }


def _set_count(document, color, count):
    document["colors"].setdefault(color, {})["instances"] = count


def _with_count(state, color, count):
    predicted = dict(state, colors=dict(state.get("colors", {})))
    predicted["colors"][color] = dict(predicted["colors"].get(color) or {}, instances=count)
    return predicted


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
