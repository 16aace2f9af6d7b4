# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ports a container publishes, from its inspect data, and the address each is registered at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class PublishedPort:
    number: str  # the container port, "8080"
    proto: str  # tcp | udp | sctp
    host_ip: str
    host_port: int

    def registered_address(self, ip: str) -> str:
        """The host binding when the port is published on one address (it answers nowhere else),
        else ``ip``, this host's address."""
        return ip if self.host_ip in WILDCARD_ADDRESSES else self.host_ip


def published_ports(inspect: dict[str, Any]) -> list[PublishedPort]:
    """The container's published ports, one per container port and protocol, in port order.

    A port published on several addresses (Docker binds 0.0.0.0 and :: for ``-p 8080``)
    counts once, with its IPv4 binding when there is one.
    """
    found = []
    for key, bindings in ((inspect.get("NetworkSettings") or {}).get("Ports") or {}).items():
        number, _slash, proto = key.partition("/")
        chosen = _preferred_binding(bindings or [])
        if chosen is not None and number.isdigit():
            found.append(PublishedPort(str(int(number)), proto or "tcp", chosen.get("HostIp") or "", int(chosen["HostPort"])))
    return sorted(found, key=lambda port: (int(port.number), port.proto))


def _preferred_binding(bindings: list[dict[str, str]]) -> dict[str, str] | None:
    """The first binding to a real host port, an IPv4 one over an IPv6 one."""
    chosen = None
    for binding in bindings:
        host_port = str(binding.get("HostPort") or "")
        if not host_port.isdigit() or int(host_port) == 0:
            continue
        if chosen is None or (":" in (chosen.get("HostIp") or "") and ":" not in (binding.get("HostIp") or "")):
            chosen = binding
    return chosen


def find_port(inspect: dict[str, Any], container_port: str) -> PublishedPort | None:
    """The published port of ``container_port`` ("8080/tcp", "8080" for tcp), None when unpublished."""
    number, _slash, proto = container_port.partition("/")
    return next((p for p in published_ports(inspect) if p.number == number and p.proto == (proto or "tcp")), None)
