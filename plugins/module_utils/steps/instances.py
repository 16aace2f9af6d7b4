# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the steps do to instances besides running them: wait until they are healthy, register them in
Consul (or wait for the registrators of their nodes to), take them out of Consul before they stop, undo
new ones after a failure, number them, and start the side targets a release depends on.

The backend's ``registration_owner`` decides who registers: ``flow`` (this module, right after it saw
them healthy) or ``registrator`` (the registrator of each node, from the instances' labels; the flow
only waits for Consul to list them, or to stop listing them).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import backend_name
from ansible_collections.dockerflow.flow.plugins.module_utils.health import Probe, wait_healthy
from ansible_collections.dockerflow.flow.plugins.module_utils.options import default
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_rotation import checked_endpoints, wait_out_of_rotation
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import Registration, service_id_for

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext, FlowSettings

DNS_QUIESCE_SECONDS = 3
DEREGISTRATION_WAIT_SECONDS = 30


# -- healthy ---------------------------------------------------------------------------------------------
def await_healthy(flow: FlowContext, instances: list[Instance], probe: Probe) -> list[Instance]:
    """The instances once they all pass ``probe`` within health_timeout (FlowError naming the first that fails)."""
    return wait_healthy(flow.backend, instances, probe, flow.settings.health_timeout, flow.progress)


def clone_probe(flow: FlowContext, template: Instance, port_key: str | None, health_path: str | None) -> Probe:
    """The probe of copies of a recorded release (scale, rollback), from what the release recorded."""
    address = flow.settings.service_address
    if health_path and port_key:
        return Probe("http", address=address, path=health_path, container_port=port_key)
    if template.health is not None:
        return Probe("docker", address=address)
    if port_key:
        return Probe("tcp", address=address, container_port=port_key)
    return Probe("running", address=address)


# -- in and out of Consul ------------------------------------------------------------------------------
def register(flow: FlowContext, instances: list[Instance], port_key: str | None, health_path: str | None) -> None:
    """Register healthy instances in Consul, or wait until their nodes' registrators did."""
    if flow.backend.registration_owner != "flow":
        _await_registrations(flow, instances, port_key)
        return
    settings = flow.settings
    for instance in instances:
        port = instance.ports.get(port_key) if port_key else None
        if not port:
            continue
        flow.registrar.register(
            Registration(
                service=settings.service,
                service_id=service_id_for(instance.name),
                address=settings.service_address,
                port=port,
                color=instance.color,
                release=instance.release,
                container=instance.name,
                check_http_path=health_path,
                container_port=port_key,
            )
        )
        flow.progress("registered %s in Consul as %s (%s:%d)" % (instance.name, settings.service, settings.service_address, port))


def _await_registrations(flow: FlowContext, instances: list[Instance], port_key: str | None) -> None:
    """Instances the registrators of their nodes register (Swarm tasks): wait until Consul lists them passing."""
    if not port_key or not instances:
        return
    settings = flow.settings
    wanted = {service_id_for(instance.name): instance for instance in instances}
    started = time.monotonic()
    passing = flow.registrar.watch_passing(settings.service, lambda ids: set(wanted) <= ids, settings.health_timeout)
    missing = sorted(set(wanted) - passing)
    if missing:
        instance = wanted[missing[0]]
        raise FlowError(
            "Consul does not list %s passing after %ds (health_timeout). The registrator of its node (%s) "
            "registers it: check that the registrator runs there (role dockerflow.flow.registrator) and that "
            "the node's Consul agent reaches %s:%s."
            % (instance.name, settings.health_timeout, instance.address or "unknown",
               instance.address or "the node", instance.ports.get(port_key)),
            failed_instance=instance.name,
        )
    flow.progress("Consul lists %d new instance(s) passing, registered by the registrators of their nodes (%.1fs)"
                  % (len(wanted), time.monotonic() - started))


def deregister(flow: FlowContext, instances: list[Instance]) -> set[str]:
    """Take ``instances`` out of Consul; returns where they were registered (``address:port``), which quiesce
    asks the proxy about."""
    if flow.backend.registration_owner != "flow" or not instances:
        return set()  # the registrators deregister instances when they stop
    service_ids = [service_id_for(instance.name) for instance in instances]
    endpoints = flow.registrar.endpoints(service_ids)
    for service_id in service_ids:
        flow.registrar.deregister(service_id)
    return endpoints


def await_deregistrations(flow: FlowContext, instances: list[Instance]) -> None:
    """Registrators deregister the tasks Swarm stopped: wait (bounded) until Consul stops listing them."""
    if flow.backend.registration_owner == "flow" or not instances:
        return
    gone = {service_id_for(instance.name) for instance in instances}
    if gone & flow.registrar.watch_passing(flow.settings.service, lambda ids: not gone & ids, DEREGISTRATION_WAIT_SECONDS):
        flow.warnings.append(
            "Consul still lists %s as passing %ds after Swarm stopped them: is the registrator of their "
            "node running?" % (", ".join(sorted(gone)), DEREGISTRATION_WAIT_SECONDS)
        )


def quiesce(flow: FlowContext, state: dict, leaving: list[Instance], endpoints: set[str]) -> None:
    """After deregistering serving instances (``leaving``, registered at ``endpoints``) of a routed service, wait
    until the proxy stopped sending requests to them, before they stop.

    The proxy learns about instances from Consul DNS (a resolution a second, obsolete records kept 2 s), so
    stopping at once would cut requests it still sends there. A step that reaches the proxy (``reach_proxy``)
    asks it (proxy_rotation), bounded; else, or when the proxy cannot be asked, it waits DNS_QUIESCE_SECONDS.
    Registrator-owned instances are deregistered only when they stop, so there is nothing to wait for.
    """
    if not state.get("routes") or flow.backend.registration_owner != "flow" or not leaving:
        return
    started = time.monotonic()
    try:
        busy = _ask_proxy(flow, state, leaving, endpoints)
    except Exception as error:  # asking is only quicker than the fixed wait: whatever goes wrong, wait as before
        reason = error.msg if isinstance(error, FlowError) else "%s: %s" % (error.__class__.__name__, error)
        time.sleep(max(0.0, DNS_QUIESCE_SECONDS - (time.monotonic() - started)))
        flow.progress("waited %ds for the proxy to stop sending requests to them (it was not asked: %s)"
                      % (DNS_QUIESCE_SECONDS, (reason.splitlines() or [""])[0].rstrip(".")))
        return
    waited = time.monotonic() - started
    if busy:
        flow.warn("the proxy still sent requests to %s (or ran an earlier configuration) %.0fs after they left "
                  "Consul; they stop now" % (", ".join(busy), waited))
    else:
        flow.progress("waited %.1fs for the proxy to stop sending requests to them: it no longer has them in rotation"
                      % waited)


def _ask_proxy(flow: FlowContext, state: dict, leaving: list[Instance], endpoints: set[str]) -> list[str]:
    """quiesce asking the proxy that routes the service: the servers still in rotation when it gave up waiting."""
    if flow.reach_proxy is None:
        raise FlowError("this module does not reach the proxy")
    node = flow.reach_proxy()
    routed_by = state["routes"].get("proxy") or default("proxy_name")
    if node.name != routed_by:
        raise FlowError("the service is routed by proxy %s, and this run reaches %s (proxy_name)" % (routed_by, node.name))
    checked = checked_endpoints(endpoints)
    return [server for color in sorted({instance.color for instance in leaving})
            for server in wait_out_of_rotation(node, backend_name(flow.settings.service, color), checked)[1]]


def discard(flow: FlowContext, instances: list[Instance]) -> None:
    """Undo new instances after a failure; never raises over the original error."""
    for instance in instances:
        try:
            deregister(flow, [instance])
        except FlowError:
            pass
    try:
        flow.backend.discard(instances)
    except FlowError as error:
        flow.warnings.append("Undoing the new instances was incomplete: %s" % error.msg)


# -- which instances ----------------------------------------------------------------------------------
def free_numbers(existing: list[Instance], count: int) -> list[int]:
    """The ``count`` lowest instance numbers none of ``existing`` has."""
    used = {instance.number for instance in existing}
    numbers, candidate = [], 1
    while len(numbers) < count:
        if candidate not in used:
            numbers.append(candidate)
        candidate += 1
    return numbers


def current_release_instances(state: dict, instances: list[Instance], color: str | None) -> list[Instance]:
    """Instances of ``color`` that belong to its recorded release (plain keeps several releases)."""
    release = (state.get("colors", {}).get(color) or {}).get("release")
    return [i for i in instances if i.color == color and (release is None or i.release == release)]


# -- side targets -------------------------------------------------------------------------------------
def side_target_names(settings: FlowSettings, project: ComposeProject) -> list[str]:
    """The target's dependencies and the side_targets asked for, with their own dependencies, dependencies first."""
    target = settings.target
    names: list[str] = []
    for name in project.dependencies(target) + list(settings.side_targets):
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


def start_side_targets(flow: FlowContext, project: ComposeProject, spec: ServiceSpec, side_specs: list[ServiceSpec],
                       built: Collection[str] = ()) -> None:
    """Make sure the side targets run (one instance each, not blue-green); wait for those something needs healthy.

    ``built``: the side targets whose image this deploy built (never pulled)."""
    settings = flow.settings
    if side_specs:
        flow.fence("starting the side targets")
    for side in side_specs:
        outcome = flow.backend.ensure_side_target(side, project, settings.project,
                                                  settings.pull_side_targets and side.name not in built,
                                                  settings.publish_address)
        if outcome:
            flow.progress("side target %s %s" % (side.name, outcome))
        if spec.depends_on.get(side.name) == "service_healthy" or any(
            other.depends_on.get(side.name) == "service_healthy" for other in side_specs
        ):
            await_healthy(flow, [flow.backend.side_target_instance(side, settings.project)], Probe("docker"))
