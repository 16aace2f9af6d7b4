# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Register instances in the Consul agent, each with a health check.

A service ``S`` is registered once per instance, with the color as a tag, so
``S`` tagged ``blue`` lists the blue instances; with ``legacy_names`` the
instance is also registered as ``S-<color>``, the name the original Docker
Flow and Registrator used.

Every instance has one owner of its registration: the flow (``Registrar``, for
plain containers) or the registrator of the node it runs on (Swarm tasks, see
``roles/registrator/files/dockerflow_registrator``). Both build the entry from
``Registration``, so an instance looks the same in Consul whoever registered it.
This file is the contract between them: the registrator's image carries it (with
``labels.py`` and ``errors.py``), so it imports nothing but the standard library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

META_SERVICE = "dockerflow-service"
META_COLOR = "dockerflow-color"
META_RELEASE = "dockerflow-release"
META_CONTAINER = "dockerflow-container"
# What the registrator needs to point a flow-made registration at the port its container publishes
# after it started again (a new ephemeral host port): the container port and the check's path.
META_PORT = "dockerflow-port"
META_CHECK_HTTP = "dockerflow-check-http"
CHECK_INTERVAL = "2s"
CHECK_TIMEOUT = "2s"
LEGACY_ID_SUFFIX = "-legacy"
BLOCKING_WAIT = 5  # seconds a blocking query may wait for a change, well within the client's timeout
POLL_SECONDS = 0.5  # between two reads when Consul answers without blocking


@dataclass(frozen=True)
class Registration:
    service: str
    service_id: str
    address: str
    port: int
    color: str
    release: int
    container: str
    check_http_path: str | None = None
    container_port: str | None = None  # "8080/tcp": the container port ``port`` publishes
    # The flow registers instances it saw healthy, so their check starts passing and the proxy
    # can use them at once; a registrator registers what it sees start: Consul's default critical.
    initial_status: str | None = "passing"

    def check(self) -> dict:
        common = {"Interval": CHECK_INTERVAL, "Timeout": CHECK_TIMEOUT}
        if self.initial_status:
            common["Status"] = self.initial_status
        if self.check_http_path:
            return dict(common, HTTP=http_check_url(self.address, self.port, self.check_http_path))
        return dict(common, TCP=tcp_check_address(self.address, self.port))

    def meta(self) -> dict[str, str]:
        meta = {
            META_SERVICE: self.service,
            META_COLOR: self.color,
            META_RELEASE: str(self.release),
            META_CONTAINER: self.container,
        }
        if self.container_port:
            meta[META_PORT] = self.container_port
        if self.check_http_path:
            meta[META_CHECK_HTTP] = self.check_http_path
        return meta

    def payloads(self, legacy_names: bool = False) -> list[dict]:
        """The agent registrations of this instance (bodies of PUT /v1/agent/service/register)."""
        names = [(self.service, self.service_id)]
        if legacy_names:
            names.append(("%s-%s" % (self.service, self.color), self.service_id + LEGACY_ID_SUFFIX))
        return [
            {
                "ID": service_id,
                "Name": name,
                "Address": self.address,
                "Port": self.port,
                "Tags": [self.color, "release-%d" % self.release, "dockerflow"],
                "Meta": self.meta(),
                "Check": self.check(),
            }
            for name, service_id in names
        ]


def url_host(address: str) -> str:
    """``address`` as the host part of a URL: IPv6 in brackets."""
    return "[%s]" % address if ":" in address else address


# The targets of the checks every registration gets, the flow's and the registrator's alike.
def http_check_url(address: str, port: int, path: str, scheme: str = "http") -> str:
    return "%s://%s:%d%s" % (scheme, url_host(address), port, path)


def tcp_check_address(address: str, port: int) -> str:
    return "%s:%d" % (url_host(address), port)


def service_id_for(container_name: str) -> str:
    return "dockerflow-%s" % container_name


class ConsulCalls(Protocol):
    """What Registrar needs of its client: consul_client.ConsulClient (not imported: the registrator's image
    carries this file alone)."""

    api: Any

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


class Registrar:
    def __init__(self, client: ConsulCalls, legacy_names: bool = False) -> None:
        self.client = client
        self.legacy_names = legacy_names

    def register(self, registration: Registration) -> None:
        api = self.client.api
        for payload in registration.payloads(self.legacy_names):
            self.client.call(
                "registering %s" % payload["ID"],
                api.agent.service.register,
                payload["Name"],
                service_id=payload["ID"],
                address=payload["Address"],
                port=payload["Port"],
                tags=payload["Tags"],
                meta=payload["Meta"],
                check=payload["Check"],
            )

    def deregister(self, service_id: str) -> None:
        api = self.client.api
        registered = self.registered_ids()
        for candidate in (service_id, service_id + LEGACY_ID_SUFFIX):
            if candidate in registered:
                self.client.call("deregistering %s" % candidate, api.agent.service.deregister, candidate)

    def endpoints(self, service_ids: list[str]) -> set[str]:
        """``address:port`` of the agent's registrations ``service_ids`` (legacy twins included): where the proxy,
        through Consul DNS, sends their requests."""
        wanted = set(service_ids) | {service_id + LEGACY_ID_SUFFIX for service_id in service_ids}
        services = self.client.call("listing agent services", self.client.api.agent.services)
        return {"%s:%s" % (entry.get("Address") or "", entry.get("Port"))
                for service_id, entry in services.items() if service_id in wanted and entry.get("Port")}

    def registered_ids(self, service: str | None = None) -> set[str]:
        """Service IDs this collection registered in the agent, optionally for one service."""
        services = self.client.call("listing agent services", self.client.api.agent.services)
        return {
            service_id
            for service_id, entry in services.items()
            if (entry.get("Meta") or {}).get(META_SERVICE)
            and (service is None or entry["Meta"][META_SERVICE] == service)
        }

    def passing(self, service: str, color: str) -> int:
        """How many instances of ``service`` tagged ``color`` pass their checks."""
        _index, entries = self.client.call(
            "reading health of %s" % service, self.client.api.health.service, service, tag=color, passing=True
        )
        return len(entries or [])

    def passing_ids(self, service: str) -> set[str]:
        """IDs of the instances of ``service`` whose checks, their node's included, all pass."""
        _index, entries = self.client.call(
            "reading health of %s" % service, self.client.api.health.service, service, passing=True
        )
        return {entry["Service"]["ID"] for entry in entries or []}

    def watch_passing(self, service: str, done: Callable[[set[str]], bool], timeout: float,
                      tag: str | None = None) -> set[str]:
        """IDs of the passing instances of ``service`` (tagged ``tag``) once ``done(ids)``, or as they are when ``timeout``
        runs out. Blocking queries: Consul answers when the list changes, so nobody polls and no change waits for a poll.
        """
        deadline = time.monotonic() + timeout
        index = None
        while True:
            blocking = {} if index is None else {"index": index, "wait": "%ds" % max(1, min(BLOCKING_WAIT, timeout))}
            asked = time.monotonic()
            answer, entries = self.client.call("reading health of %s" % service, self.client.api.health.service, service,
                                               passing=True, tag=tag, **blocking)
            ids = {entry["Service"]["ID"] for entry in entries or []}
            remaining = deadline - time.monotonic()
            if done(ids) or remaining <= 0:
                return ids
            if answer == index and time.monotonic() - asked < 0.1:
                time.sleep(min(POLL_SECONDS, remaining))  # an answer that did not block: poll as before
            index, timeout = answer, remaining

    def health(self, service: str) -> dict[str, str]:
        """service_id -> passing|warning|critical for the instances of ``service``."""
        _index, entries = self.client.call("reading health of %s" % service, self.client.api.health.service, service)
        result = {}
        for entry in entries or []:
            statuses = [check["Status"] for check in entry.get("Checks", []) if check.get("ServiceID")]
            worst = "passing"
            for status in statuses:
                if status == "critical" or (status == "warning" and worst == "passing"):
                    worst = status
            result[entry["Service"]["ID"]] = worst
        return result
