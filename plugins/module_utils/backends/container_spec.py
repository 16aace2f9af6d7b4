# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container backend's translations, pure (no engine calls).

A Compose service becomes the arguments of the engine's create_container and create_host_config;
a template container's inspect data becomes those of its clones; a container's inspect data
becomes an ``Instance``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_hooks import labelled_hooks
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_CONFIG_HASH,
    LABEL_CONTAINER_NUMBER,
    LABEL_NUMBER,
    LABEL_RELEASE,
    LABEL_SERVICE,
)

try:
    from docker.types import Mount

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ServiceSpec


# -- a Compose service -> a new container ---------------------------------------------------------


def create_args(spec: ServiceSpec) -> dict[str, Any]:
    """The create_container arguments ``spec`` decides (not its name, environment, labels or networks)."""
    ports = [(port.container_port, port.protocol) for port in spec.ports]
    return {
        "command": spec.command,
        "entrypoint": spec.entrypoint,
        "ports": ports + _exposed(spec) or None,
        "hostname": spec.hostname,
        "user": spec.user,
        "working_dir": spec.working_dir,
        "stop_signal": spec.stop_signal,
        "stop_timeout": spec.stop_grace_period,
        "healthcheck": spec.healthcheck,
        "stdin_open": spec.engine.stdin_open,
        "tty": spec.engine.tty,
        "platform": spec.engine.platform,
    }


def _exposed(spec: ServiceSpec) -> list[tuple[int, str]]:
    """Compose's ``expose`` entries ("8080" or "8080/udp") as (port, protocol)."""
    exposed = []
    for item in spec.expose:
        number, _slash, protocol = str(item).partition("/")
        exposed.append((int(number), protocol or "tcp"))
    return exposed


def host_config_args(
    spec: ServiceSpec,
    volume_names: dict[str, str],
    publish_address: str,
    first_network: str | None,
    peers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The create_host_config arguments of ``spec``, its ports published on ``publish_address``.

    The network mode is ``first_network``, or when the service joins none its ``network_mode``;
    ``peers`` names the container of each Compose service a ``service:<name>`` mode refers to.
    """
    peers = peers or {}
    return dict(engine_host_config(spec, peers), **{
        "port_bindings": port_bindings(spec, publish_address) or None,
        "mounts": mounts(spec, volume_names) or None,
        "restart_policy": restart_policy(spec.restart),
        "extra_hosts": [host.replace("=", ":", 1) if "=" in host else host for host in spec.extra_hosts] or None,
        "tmpfs": spec.tmpfs or None,
        "read_only": spec.read_only or None,
        "init": spec.init,
        "cap_add": spec.cap_add or None,
        "cap_drop": spec.cap_drop or None,
        "log_config": spec.logging,
        "network_mode": first_network or namespace_mode(spec.engine.network_mode, peers),
    })


def engine_host_config(spec: ServiceSpec, peers: dict[str, str]) -> dict[str, Any]:
    """The create_host_config arguments of the long-tail keys (``EngineOptions``); unset ones are None."""
    engine = spec.engine
    ulimits = [{"Name": name, "Soft": limit["soft"], "Hard": limit["hard"]} for name, limit in engine.ulimits.items()]
    return {
        "runtime": engine.runtime,
        "sysctls": engine.sysctls or None,
        "ulimits": ulimits or None,
        "mem_limit": engine.mem_limit,
        "mem_reservation": engine.mem_reservation,
        "nano_cpus": int(engine.cpus * 10**9) if engine.cpus else None,
        "cpu_shares": engine.cpu_shares,
        "shm_size": engine.shm_size,
        "devices": engine.devices or None,
        "dns": engine.dns or None,
        "dns_search": engine.dns_search or None,
        "dns_opt": engine.dns_opt or None,
        "security_opt": engine.security_opt or None,
        "privileged": engine.privileged,
        "pid_mode": namespace_mode(engine.pid, peers),
        "ipc_mode": namespace_mode(engine.ipc, peers),
        "group_add": engine.group_add or None,
        "device_requests": [dict(request) for request in engine.gpus] or None,
        **engine.blkio_config,
    }


def namespace_mode(mode: str | None, peers: dict[str, str]) -> str | None:
    """A network/pid/ipc mode for the engine: Compose's ``service:<name>`` becomes ``container:<its container>``."""
    kind, _colon, name = (mode or "").partition(":")
    if kind == "service":
        return "container:%s" % peers[name]
    return mode


def namespace_peers(spec: ServiceSpec, project: str, services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The container of each Compose service ``spec`` shares a namespace with (``service:<name>``).

    That service runs as a side target: its container_name, else ``<project>-<service>-1``.
    """
    peers = {}
    for mode in (spec.engine.network_mode, spec.engine.pid, spec.engine.ipc):
        kind, _colon, name = (mode or "").partition(":")
        if kind == "service":
            peers[name] = (services.get(name) or {}).get("container_name") or "%s-%s-1" % (project, name)
    return peers


def port_bindings(spec: ServiceSpec, publish_address: str) -> dict[str, list[tuple]]:
    """Each container port ("8080/tcp") -> [(address, host port)], or [(address,)] when Docker picks the port."""
    bindings = {}
    for port in spec.ports:
        key = "%d/%s" % (port.container_port, port.protocol)
        address = port.host_ip or publish_address
        bindings.setdefault(key, []).append((address, port.host_port) if port.host_port else (address,))
    return bindings


def mounts(spec: ServiceSpec, volume_names: dict[str, str]) -> list[Mount]:
    """The binds, named volumes (by their engine names) and tmpfs mounts of ``spec``."""
    result = []
    for mount in spec.mounts:
        if mount.kind == "bind":
            result.append(Mount(target=mount.target, source=mount.source, type="bind", read_only=mount.read_only))
        elif mount.kind == "volume":
            source = volume_names.get(mount.source) if mount.source else None
            result.append(Mount(target=mount.target, source=source, type="volume", read_only=mount.read_only))
        else:
            result.append(Mount(target=mount.target, source=None, type="tmpfs"))
    return result


def restart_policy(restart: str | None) -> dict[str, Any] | None:
    """Compose's ``restart`` ("on-failure:3") as the engine's restart policy; None for none."""
    if not restart or restart == "no":
        return None
    policy, _colon, retries = restart.partition(":")
    return {"Name": policy, "MaximumRetryCount": int(retries or 0)}


def endpoint_args(options: dict[str, Any], aliases: list[str]) -> dict[str, Any]:
    """The endpoint of one of the service's networks (create_endpoint_config and connect_container_to_network
    take the same arguments): ``aliases`` and the network's own, and its fixed addresses when the file sets them
    (``priority`` is the order the container joins its networks, not an endpoint setting)."""
    endpoint = {key: value for key, value in options.items() if key != "priority"}
    endpoint["aliases"] = list(aliases) + list(options["aliases"])
    return endpoint


# -- a running container -> its clones ------------------------------------------------------------


def clone_args(config: dict[str, Any], template_id: str, number: int) -> dict[str, Any]:
    """The create_container arguments of clone ``number`` of the container whose ``Config`` is ``config``."""
    labels = dict(config.get("Labels") or {})
    labels[LABEL_NUMBER] = str(number)
    labels[LABEL_CONTAINER_NUMBER] = str(number)
    return {
        "command": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "environment": config.get("Env"),
        "labels": labels,
        "ports": [tuple(port.split("/")) for port in (config.get("ExposedPorts") or {})] or None,
        # the engine's default hostname is the container's short ID: the clone gets its own
        "hostname": config.get("Hostname") if config.get("Hostname") != template_id[:12] else None,
        "user": config.get("User") or None,
        "working_dir": config.get("WorkingDir") or None,
        "stop_signal": config.get("StopSignal"),
        "stop_timeout": config.get("StopTimeout"),
        "healthcheck": config.get("Healthcheck"),
        "stdin_open": config.get("OpenStdin", False),
        "tty": config.get("Tty", False),
    }


def first_network(data: dict[str, Any]) -> str:
    """The network a container was created on (its network mode), else the first it joined."""
    networks = data["NetworkSettings"].get("Networks") or {}
    mode = data["HostConfig"].get("NetworkMode")
    return mode if mode in networks else next(iter(networks))


def inherited_aliases(endpoint: dict[str, Any], template_id: str) -> list[str]:
    """A template's aliases on one network, less the engine's own alias (its short ID)."""
    return [alias for alias in (endpoint.get("Aliases") or []) if not template_id.startswith(alias)]


# -- a container -> an Instance -------------------------------------------------------------------


def container_instance(data: dict[str, Any]) -> Instance:
    """The Instance of the container whose inspect data is ``data``."""
    labels = data["Config"]["Labels"] or {}
    state = data["State"]
    ports = {}
    for key, bindings in (data["NetworkSettings"].get("Ports") or {}).items():
        if bindings:
            ports[key] = int(bindings[0]["HostPort"])
    return Instance(
        id=data["Id"],
        name=data["Name"].lstrip("/"),
        service=labels.get(LABEL_SERVICE, ""),
        color=labels.get(LABEL_COLOR, ""),
        release=int(labels.get(LABEL_RELEASE, "0") or 0),
        number=int(labels.get(LABEL_NUMBER, "0") or 0),
        status=state["Status"],
        health=(state.get("Health") or {}).get("Status"),
        image=data["Config"]["Image"],
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        created=data["Created"],
        ports=ports,
        exit_code=state.get("ExitCode"),
        pre_stop=tuple(labelled_hooks(labels, "pre_stop")),
    )
