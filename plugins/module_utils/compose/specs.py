# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Compose service means once read: the normalized specs the backends create instances from.

A new service key becomes a field here (field names follow Compose's), its parsing goes to
``services`` (or a file of its own beside it), and both backends map it onto the engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# What a service may fix on one of its networks (link_local_ips: a list, the others one address each).
FIXED_ADDRESS_KEYS = ("ipv4_address", "ipv6_address", "link_local_ips")
# A build context the engine fetches itself (the Docker SDK passes these on as ``remote``).
REMOTE_CONTEXT_PREFIXES = ("http://", "https://", "git://", "github.com/", "git@")


# EngineOptions fields newer than the others: left out of the config hash when unset, so a service that sets
# older engine keys only keeps its digest (no needless redeploy after an upgrade).
_ENGINE_FIELDS_ADDED_LATER = ("blkio_config", "post_start", "pre_stop", "pre_start")


@dataclass
class PortSpec:
    container_port: int
    protocol: str = "tcp"
    host_ip: str | None = None
    host_port: int | None = None
    mode: str | None = None  # Swarm publishing mode (long syntax): host | ingress

    @property
    def key(self) -> str:
        return "%d/%s" % (self.container_port, self.protocol)


@dataclass
class MountSpec:
    kind: str  # bind | volume | tmpfs
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass
class FileMountSpec:
    """A secret or config a service mounts. The content is never here: ``digest`` (its SHA-256) stands for it,
    so a new content makes a new config hash (a new release) and a new Swarm object name."""

    source: str  # the key under the top-level secrets or configs
    target: str  # absolute path in the container
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None
    digest: str | None = None  # None for an external one


@dataclass
class DeploySpec:
    """The ``deploy`` section, in the Docker Engine's Swarm API units (durations in ns, bytes, NanoCPUs).

    Swarm services use all of it; plain containers only ``replicas`` (the first release's count).
    """

    replicas: int | None = None
    endpoint_mode: str | None = None  # dnsrr | vip
    labels: dict[str, str] = field(default_factory=dict)  # labels of the Swarm service (not of its containers)
    constraints: list[str] = field(default_factory=list)  # "node.role==worker"
    spread: list[str] = field(default_factory=list)  # placement preferences: "node.labels.zone"
    max_replicas_per_node: int | None = None
    update_config: dict[str, Any] | None = None  # {"Parallelism": 1, "Delay": ns, "FailureAction": ..., ...}
    rollback_config: dict[str, Any] | None = None
    restart_policy: dict[str, Any] | None = None  # {"Condition": "on-failure", "Delay": ns, "MaxAttempts": 3, "Window": ns}
    limits: dict[str, int] = field(default_factory=dict)  # {"NanoCPUs": int, "MemoryBytes": int, "Pids": int}
    reservations: dict[str, int] = field(default_factory=dict)  # {"NanoCPUs": int, "MemoryBytes": int}


@dataclass
class EngineOptions:
    """The long tail of service keys: engine settings every instance gets alike (names follow Compose's).

    Sizes are bytes, ``cpus`` a fraction of CPUs; ``network_mode``/``pid``/``ipc`` keep Compose's
    ``service:<name>`` form, which the container backend resolves to that service's container.
    """

    platform: str | None = None
    runtime: str | None = None
    network_mode: str | None = None  # bridge | host | none | service:<name> | container:<name>
    stdin_open: bool = False
    tty: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)
    ulimits: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"soft": n, "hard": n}
    mem_limit: int | None = None
    mem_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    shm_size: int | None = None
    devices: list[str] = field(default_factory=list)  # host[:container[:permissions]]
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opt: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    privileged: bool = False
    pid: str | None = None
    ipc: str | None = None
    group_add: list[str] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)  # Engine API DeviceRequests
    # the Docker SDK's host config arguments: blkio_weight, blkio_weight_device, device_read_bps, ...
    blkio_config: dict[str, Any] = field(default_factory=dict)
    # lifecycle hooks run in the container (compose.hooks): after it started, before it is stopped
    post_start: list[dict[str, Any]] = field(default_factory=list)
    pre_stop: list[dict[str, Any]] = field(default_factory=list)
    # init containers run once per release before its instances start (compose.hooks)
    pre_start: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BuildSpec:
    """The ``build`` section: how the service's image is built on the engine (``backends.image_build``).

    Names follow Compose's; ``context`` is an absolute directory or a URL the engine fetches, ``dockerfile``
    is as written (relative to the context, or absolute), ``shm_size`` is bytes.
    """

    context: str
    dockerfile: str | None = None
    dockerfile_inline: str | None = field(default=None, repr=False)
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    cache_from: list[str] = field(default_factory=list)
    extra_hosts: dict[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    no_cache: bool = False
    pull: bool = False
    isolation: str | None = None
    platform: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def remote(self) -> bool:
        """Whether the context is a URL (a Git repository or a tarball) the engine fetches itself."""
        return self.context.startswith(REMOTE_CONTEXT_PREFIXES)


@dataclass
class ServiceSpec:
    """One Compose service, normalized; field names follow Compose's."""

    name: str
    image: str  # empty for a service Flow builds (``build`` alone): the deploy step names the image per release
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: list[PortSpec] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    mounts: list[MountSpec] = field(default_factory=list)
    secrets: list[FileMountSpec] = field(default_factory=list)
    configs: list[FileMountSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    # compose network key -> {"aliases": [...]}, with "ipv4_address"/"ipv6_address"/"link_local_ips" when the file
    # fixes them and "priority" when it sets one; in the order the container joins them (priority first)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    restart: str | None = None
    healthcheck: dict[str, Any] | None = None  # Docker API form (test, interval ns, ...), {"test": ["NONE"]} to disable
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    container_name: str | None = None
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    stop_signal: str | None = None
    stop_grace_period: int | None = None  # seconds
    extra_hosts: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    read_only: bool = False
    init: bool | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    logging: dict[str, Any] | None = None
    pull_policy: str | None = None
    pull_refresh_s: int | None = None  # pull_policy refresh: pull again when the local image is older than this
    deploy: DeploySpec = field(default_factory=DeploySpec)
    engine: EngineOptions = field(default_factory=EngineOptions)
    build: BuildSpec | None = None

    def config_hash(self) -> str:
        """A stable digest of everything that defines a running instance."""
        data = asdict(self)
        # What a build makes is the digest of its inputs (backends.build_context), which the deploy step adds:
        # the context's absolute path would make a moved project directory a new release.
        del data["build"]
        del data["pull_refresh_s"]  # when to pull is no part of what runs
        # A service that uses none of the keys read since 0.x keeps the digest it had before they existed
        # (no needless redeploy after an upgrade).
        for key, unused in (("engine", EngineOptions()), ("secrets", []), ("configs", [])):
            if getattr(self, key) == unused:
                del data[key]
        for key in _ENGINE_FIELDS_ADDED_LATER:
            if key in data.get("engine", {}) and not data["engine"][key]:
                del data["engine"][key]
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
