# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait until new instances are ready to take traffic.

The readiness signal, best first: the image's (or Compose file's) Docker
HEALTHCHECK; an HTTP path the operator names; a TCP port; and for a target
that publishes nothing, staying up for a few seconds.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

POLL_SECONDS = 0.5  # the longest pause between two probes
FIRST_POLL_SECONDS = 0.1  # the first pause; each next one doubles up to POLL_SECONDS: an app that is healthy
# in about a second is seen healthy within 0.1-0.2 s of it, a slow one is probed no more often than before
STABLE_SECONDS = 3
PROBE_TIMEOUT = 2
TCP_SETTLE_SECONDS = 0.3


# What this file reads of a service (compose.ServiceSpec), its instances and their backend (the backends'
# Instance and Backend): protocols, so that health depends on no more than it uses, nor on where those live.
class ProbedService(Protocol):
    name: str
    ports: list  # of compose.PortSpec: container_port, key
    healthcheck: dict | None


class ProbedInstance(Protocol):
    id: str
    name: str
    status: str
    health: str | None
    ports: dict
    exit_code: int | None
    address: str | None
    error: str | None


class InstanceSource(Protocol):
    def refresh(self, instance: ProbedInstance) -> ProbedInstance: ...

    def logs(self, instance: ProbedInstance, tail: int = 20) -> str: ...

    def health_log(self, instance: ProbedInstance) -> str | None: ...


@dataclass(frozen=True)
class Probe:
    kind: str  # docker | http | tcp | running
    address: str = "127.0.0.1"
    path: str | None = None
    container_port: str | None = None  # "8080/tcp": which published port to probe

    def describe(self) -> str:
        if self.kind == "docker":
            return "Docker HEALTHCHECK"
        if self.kind == "http":
            return "HTTP GET %s on port %s" % (self.path, self.container_port)
        if self.kind == "tcp":
            return "TCP connect to port %s" % self.container_port
        return "running for %ds" % STABLE_SECONDS


def choose_probe(spec: ProbedService, image_has_healthcheck: bool, health_path: str | None, health_port: int | None,
                 address: str) -> Probe:
    """Pick the readiness probe for ``spec``; errors name the parameter at fault."""
    disabled = bool(spec.healthcheck) and (spec.healthcheck.get("test") or [None])[0] == "NONE"
    declared = bool(spec.healthcheck) and not disabled and spec.healthcheck.get("test")
    if health_path is not None and not str(health_path).startswith("/"):
        raise FlowError("health_path=%r is not valid: it must start with /." % health_path)
    port_key = _port_key(spec, health_port)
    if health_path:
        if port_key is None:
            raise FlowError("health_path is set but the target publishes no port to probe: add ports or set health_port.")
        return Probe("http", address=address, path=health_path, container_port=port_key)
    if (declared or image_has_healthcheck) and not disabled:
        return Probe("docker", address=address)
    if port_key is not None:
        return Probe("tcp", address=address, container_port=port_key)
    return Probe("running", address=address)


def _port_key(spec: ProbedService, health_port: int | None) -> str | None:
    if health_port is not None:
        for port in spec.ports:
            if port.container_port == int(health_port):
                return port.key
        raise FlowError(
            "health_port=%s is not a published container port of %s (published: %s)."
            % (health_port, spec.name, ", ".join(str(p.container_port) for p in spec.ports) or "none")
        )
    return spec.ports[0].key if spec.ports else None


def _http_ok(address: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(address, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path, headers={"User-Agent": "dockerflow-health"})
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _tcp_ok(address: str, port: int) -> bool:
    """A connection that stays open counts; one closed at once does not.

    Docker's userland proxy accepts on a published port even when nothing
    listens in the container, and then closes the connection: that must not
    pass for a ready instance.
    """
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT) as connection:
            connection.settimeout(TCP_SETTLE_SECONDS)
            try:
                return connection.recv(1, socket.MSG_PEEK) != b""
            except TimeoutError:
                return True
    except OSError:
        return False


def wait_healthy(backend: InstanceSource, instances: list[ProbedInstance], probe: Probe, timeout: float,
                 progress: Callable[[str], None] | None = None) -> list[ProbedInstance]:
    """Block until every instance passes ``probe``; raise FlowError naming the first failure.

    Returns the refreshed instances. The error carries ``failed_instance`` and
    ``logs`` (the container's last lines) as details.
    """
    deadline = time.monotonic() + timeout
    pending = {instance.id: instance for instance in instances}
    ready = {}
    first_up = {}
    pause = FIRST_POLL_SECONDS
    while pending:
        for container_id in list(pending):
            instance = backend.refresh(pending[container_id])
            if instance.status in ("exited", "dead"):
                _fail(backend, instance, "exited with code %s before becoming healthy%s"
                      % (instance.exit_code, _engine_says(instance)))
            if instance.status != "running":
                continue
            if probe.kind == "docker":
                if instance.health == "unhealthy":
                    log = backend.health_log(instance) or "no output"
                    _fail(backend, instance, "is unhealthy (Docker HEALTHCHECK failed: %s)" % log)
                ok = instance.health == "healthy"
            elif probe.kind in ("http", "tcp"):
                port = instance.ports.get(probe.container_port)
                if port is None:
                    _fail(backend, instance, "does not publish %s" % probe.container_port)
                address = instance.address or probe.address  # a Swarm task answers on its node
                ok = _http_ok(address, port, probe.path) if probe.kind == "http" else _tcp_ok(address, port)
            else:
                first_up.setdefault(container_id, time.monotonic())
                ok = time.monotonic() - first_up[container_id] >= STABLE_SECONDS
            if ok:
                ready[container_id] = instance
                del pending[container_id]
                if progress:
                    progress("%s is healthy (%s)" % (instance.name, probe.describe()))
        if not pending:
            break
        if time.monotonic() >= deadline:
            instance = backend.refresh(next(iter(pending.values())))
            _fail(
                backend,
                instance,
                "did not become healthy within %ds (health_timeout; %s; status %s, health %s%s)"
                % (timeout, probe.describe(), instance.status, instance.health or "n/a", _engine_says(instance)),
            )
        time.sleep(min(pause, POLL_SECONDS))
        pause *= 2
    return [ready[instance.id] for instance in instances]


def _engine_says(instance: ProbedInstance) -> str:
    return "; the engine says: %s" % instance.error if instance.error else ""


def _fail(backend: InstanceSource, instance: ProbedInstance, reason: str) -> NoReturn:
    logs = backend.logs(instance, tail=20)
    last = logs.splitlines()[-1] if logs else ""
    suffix = " Last log line: %s" % last if last else ""
    raise FlowError(
        "Instance %s %s.%s" % (instance.name, reason, suffix),
        failed_instance=instance.name,
        logs=logs.splitlines(),
    )
