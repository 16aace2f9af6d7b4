# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Compose service as a Swarm service spec (Engine API form), pure (no engine calls).

Also what a spec says about its release: how many replicas run, how many are remembered as
stopped (``dockerflow.stopped-replicas``, see ``swarm``), and the image pinned to a digest.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import FIXED_ADDRESS_KEYS, EngineOptions
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_PROJECT

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, DeploySpec, ServiceSpec

LABEL_STOPPED = "dockerflow.stopped-replicas"
LABEL_DOCKER_HEALTH = "dockerflow.docker-health"  # "true": the tasks have a Docker HEALTHCHECK
DEFAULT_ENDPOINT_MODE = "dnsrr"
SERVICE_NAME_MAX = 63
# The long-tail keys (EngineOptions) a Swarm service has no setting for, and why.
_NOT_IN_SWARM = {
    "network_mode": "tasks join networks (networks:), they have no network mode",
    "runtime": "a task runs with its node's default runtime",
    "privileged": "a task's container cannot be privileged",
    "devices": "a task's container cannot map host devices",
    "security_opt": "a Swarm service has no security options, only Privileges that Compose does not map",
    "pid": "a task's container has its own PID namespace",
    "ipc": "a task's container has its own IPC namespace",
    "cpu_shares": "a task's CPU is set by cpus or deploy.resources",
    "shm_size": "a task's /dev/shm has the default size (mount a tmpfs there instead)",
    "gpus": "a task gets GPUs as generic resources of its node, not as device requests",
    "blkio_config": "a Swarm service has no block IO settings",
    "post_start": "Flow cannot exec in a Swarm task's container, which may run on another node",
    "pre_stop": "Flow cannot exec in a Swarm task's container, which may run on another node",
    "pre_start": "Flow runs init containers on one engine, and a Swarm release's tasks run on many nodes",
}
# Compose's container restart policy, for a service whose deploy section has none.
_RESTART_CONDITIONS = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}


def service_name(service: str, color: str, release: int) -> str:
    """The Swarm service of one release: ``<service>-<color>``, or ``<service>-r<release>`` for plain ones."""
    name = "%s-r%d" % (service, release) if color == colors.PLAIN else "%s-%s" % (service, color)
    if len(name) > SERVICE_NAME_MAX:
        raise FlowError(
            "service_name=%r is too long for Swarm: %s has %d characters, at most %d are allowed; set a shorter "
            "service_name." % (service, name, len(name), SERVICE_NAME_MAX)
        )
    return name


def build_service_spec(
    spec: ServiceSpec,
    name: str,
    image: str,
    replicas: int,
    labels: dict[str, str],
    container_labels: dict[str, str],
    environment: dict[str, str],
    networks: dict[str, str],
    aliases: list[str],
    project: str,
    compose_project: ComposeProject | None = None,
) -> dict[str, Any]:
    """The Swarm service spec (Engine API form) of Compose service ``spec``.

    ``networks`` maps the Compose network keys ``spec`` joins to their Swarm network names;
    ``aliases`` are added to the Compose aliases on every network.
    """
    deploy = spec.deploy
    refuse_swarm_unsupported(spec)
    container = _container_spec(spec, image, container_labels, environment, project, compose_project)
    result = {
        "Name": name,
        "Labels": dict(deploy.labels, **labels),
        "TaskTemplate": _task_template(spec, container, networks, aliases),
        "Mode": {"Replicated": {"Replicas": replicas}},
        "EndpointSpec": _endpoint(spec, "service %s" % spec.name),
    }
    if deploy.update_config is not None:
        result["UpdateConfig"] = dict(deploy.update_config)
    if deploy.rollback_config is not None:
        result["RollbackConfig"] = dict(deploy.rollback_config)
    return result


def _container_spec(
    spec: ServiceSpec,
    image: str,
    labels: dict[str, str],
    environment: dict[str, str],
    project: str,
    compose_project: ComposeProject | None,
) -> dict[str, Any]:
    """The task's ContainerSpec: what ``docker run`` would get, less every setting Compose leaves unset."""
    container = {
        "Image": image,
        "Labels": labels,
        "Env": ["%s=%s" % item for item in sorted(environment.items())],
    }
    optional = {
        "Command": spec.entrypoint,
        "Args": spec.command,
        "Hostname": spec.hostname,
        "Dir": spec.working_dir,
        "User": spec.user,
        "StopSignal": spec.stop_signal,
        "StopGracePeriod": spec.stop_grace_period * 10**9 if spec.stop_grace_period is not None else None,
        "Healthcheck": _healthcheck(spec.healthcheck),
        "Hosts": _hosts(spec.extra_hosts) or None,
        "ReadOnly": spec.read_only or None,
        "Init": spec.init,
        "CapabilityAdd": spec.cap_add or None,
        "CapabilityDrop": spec.cap_drop or None,
        "Mounts": _mounts(spec, project, compose_project) or None,
        "TTY": spec.engine.tty or None,
        "OpenStdin": spec.engine.stdin_open or None,
        "Groups": spec.engine.group_add or None,
        "DNSConfig": _dns_config(spec),
        "Sysctls": spec.engine.sysctls or None,
        "Ulimits": [{"Name": name, "Soft": limit["soft"], "Hard": limit["hard"]}
                    for name, limit in spec.engine.ulimits.items()] or None,
    }
    container.update({key: value for key, value in optional.items() if value is not None})
    return container


def _task_template(
    spec: ServiceSpec, container: dict[str, Any], networks: dict[str, str], aliases: list[str]
) -> dict[str, Any]:
    """The TaskTemplate: the container, its networks, and where and how Swarm runs the tasks."""
    deploy = spec.deploy
    task = {
        "ContainerSpec": container,
        "Networks": [
            {"Target": networks[key], "Aliases": list(aliases) + list(options["aliases"])}
            for key, options in spec.networks.items()
        ],
    }
    limits, reservations = _resources(spec)
    resources = {kind: values for kind, values in (("Limits", limits), ("Reservations", reservations)) if values}
    if resources:
        task["Resources"] = resources
    restart = _restart_policy(spec)
    if restart:
        task["RestartPolicy"] = restart
    placement = _placement(deploy, spec.engine.platform)
    if placement:
        task["Placement"] = placement
    if spec.logging:
        task["LogDriver"] = {"Name": spec.logging.get("driver") or "json-file", "Options": spec.logging.get("options") or {}}
    return task


def refuse_swarm_unsupported(spec: ServiceSpec) -> None:
    """Refuse, in one line naming it, the first setting of ``spec`` a Swarm service cannot have (ports included)."""
    _endpoint(spec, "service %s" % spec.name)
    for key, options in spec.networks.items():
        for name in FIXED_ADDRESS_KEYS:
            if options.get(name):
                raise FlowError(
                    "service %s: networks.%s.%s is not supported by backend swarm: tasks get their addresses from "
                    "the network; remove it, or use backend container." % (spec.name, key, name)
                )
    unset = EngineOptions()
    for key, reason in _NOT_IN_SWARM.items():
        if getattr(spec.engine, key) != getattr(unset, key):
            raise FlowError(
                "service %s: %s is not supported by backend swarm: %s; remove it, or use backend container."
                % (spec.name, key, reason)
            )


def _resources(spec: ServiceSpec) -> tuple[dict[str, int], dict[str, int]]:
    """Limits and reservations: ``deploy.resources``, else the service's mem_limit, cpus and mem_reservation."""
    engine = spec.engine
    limits = {"MemoryBytes": engine.mem_limit, "NanoCPUs": int(engine.cpus * 10**9) if engine.cpus else None}
    reservations = {"MemoryBytes": engine.mem_reservation}
    return (
        dict({key: value for key, value in limits.items() if value}, **spec.deploy.limits),
        dict({key: value for key, value in reservations.items() if value}, **spec.deploy.reservations),
    )


def _dns_config(spec: ServiceSpec) -> dict[str, list[str]] | None:
    engine = spec.engine
    config = {"Nameservers": engine.dns, "Search": engine.dns_search, "Options": engine.dns_opt}
    return {key: list(value) for key, value in config.items() if value} or None


def _healthcheck(healthcheck: dict[str, Any] | None) -> dict[str, Any] | None:
    if not healthcheck:
        return None
    keys = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
            "start_period": "StartPeriod"}
    return {keys[key]: value for key, value in healthcheck.items() if key in keys and value is not None}


def _hosts(extra_hosts: list[str]) -> list[str]:
    """Compose's ``host:ip`` (or ``host=ip``) as the ``ip host`` lines of a Swarm container spec."""
    lines = []
    for item in extra_hosts:
        separator = "=" if "=" in item else ":"
        host, _separator, address = item.partition(separator)
        lines.append("%s %s" % (address.strip("[]"), host))
    return lines


def _mounts(spec: ServiceSpec, project: str, compose_project: ComposeProject | None) -> list[dict[str, Any]]:
    mounts = []
    for mount in spec.mounts:
        entry = {"Type": mount.kind, "Target": mount.target, "ReadOnly": mount.read_only}
        if mount.kind == "bind":
            entry["Source"] = mount.source
        elif mount.kind == "volume" and mount.source:
            # Node-local volumes: each node creates its own on first use, with these options.
            declared = compose_project.volumes[mount.source] if compose_project else {}
            entry["Source"] = declared.get("name") or "%s_%s" % (project, mount.source)
            options = {"Labels": dict(declared.get("labels") or {}, **{LABEL_PROJECT: project})}
            if declared.get("driver"):
                options["DriverConfig"] = {"Name": declared["driver"], "Options": declared.get("driver_opts") or {}}
            entry["VolumeOptions"] = options
        mounts.append(entry)
    for item in spec.tmpfs:
        mounts.append({"Type": "tmpfs", "Target": str(item).split(":", 1)[0]})
    return mounts


def _endpoint(spec: ServiceSpec, where: str) -> dict[str, Any]:
    ports = []
    for port in spec.ports:
        if port.mode == "ingress":
            raise FlowError(
                "%s: port %s has mode ingress, which backend swarm does not use: instances are reached on host-mode "
                "ports of their nodes, registered in Consul. Remove the mode (or set mode: host)." % (where, port.key)
            )
        if port.host_ip:
            raise FlowError(
                "%s: port %s names host_ip %s, which Swarm cannot bind: a task publishes on every address of its "
                "node. Remove host_ip." % (where, port.key, port.host_ip)
            )
        entry = {"Protocol": port.protocol, "TargetPort": port.container_port, "PublishMode": "host"}
        if port.host_port:
            entry["PublishedPort"] = port.host_port
        ports.append(entry)
    return {"Mode": spec.deploy.endpoint_mode or DEFAULT_ENDPOINT_MODE, "Ports": ports}


def _restart_policy(spec: ServiceSpec) -> dict[str, Any] | None:
    if spec.deploy.restart_policy is not None:
        return dict(spec.deploy.restart_policy)
    if spec.restart:
        policy, _colon, retries = spec.restart.partition(":")
        result = {"Condition": _RESTART_CONDITIONS[policy]}
        if retries:
            result["MaxAttempts"] = int(retries)
        return result
    return None


def _placement(deploy: DeploySpec, platform: str | None) -> dict[str, Any]:
    """Where Swarm may put the tasks (constraints, spread preferences, a cap per node, a platform); empty for anywhere."""
    placement: dict[str, Any] = {}
    if platform:
        system, _slash, architecture = platform.partition("/")
        placement["Platforms"] = [{"OS": system, "Architecture": architecture.partition("/")[0]}]
    if deploy.constraints:
        placement["Constraints"] = list(deploy.constraints)
    if deploy.spread:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": descriptor}} for descriptor in deploy.spread]
    if deploy.max_replicas_per_node:
        placement["MaxReplicas"] = deploy.max_replicas_per_node
    return placement


# -- replicas and the stopped count -----------------------------------------------------------------


def with_replicas(spec: dict[str, Any], replicas: int, stopped: int) -> dict[str, Any]:
    """A copy of service spec ``spec`` with ``replicas`` running and ``stopped`` remembered as stopped."""
    changed = copy.deepcopy(spec)
    changed["Mode"] = {"Replicated": {"Replicas": replicas}}
    labels = dict(changed.get("Labels") or {})
    labels.pop(LABEL_STOPPED, None)
    if stopped:
        labels[LABEL_STOPPED] = str(stopped)
    changed["Labels"] = labels
    return changed


def replicas_of(spec: dict[str, Any]) -> int:
    return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)


def stopped_of(spec: dict[str, Any]) -> int:
    try:
        return int((spec.get("Labels") or {}).get(LABEL_STOPPED) or 0)
    except ValueError:
        return 0


def pinned_image(image: str, repo_digests: list[str] | None) -> str:
    """``image`` pinned to the digest the manager resolved, so every node runs the same bytes."""
    repository = image.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: -(len(last) - last.index(":"))]
    for digest in repo_digests or []:
        name, _at, value = digest.partition("@")
        if name == repository and value:
            return "%s@%s" % (image.split("@", 1)[0], value)
    return image
