# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's ``ports``, in the short (``[HOST_IP:][HOST_PORT:]PORT[/PROTOCOL]``) and long syntax."""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import PortSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

PORT_MODES = ("host", "ingress")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
_LONG_PORT_KEYS = frozenset(["target", "published", "host_ip", "protocol", "mode"])


def parse_port(item: Any, where: str) -> PortSpec:
    """One entry of ``ports`` (short or long syntax) as a PortSpec."""
    if isinstance(item, dict):
        return _long_port(item, where)
    text = str(item).strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    if protocol not in PORT_PROTOCOLS:
        raise FlowError("%s: port %r has an unknown protocol %r (tcp, udp, sctp)." % (where, item, protocol))
    if text.startswith("["):  # [::1]:8080:80
        host_ip, _separator, rest = text[1:].partition("]:")
        parts = [host_ip] + rest.split(":")
    else:
        parts = text.split(":")
    if len(parts) == 1:
        host_ip, host_port, container = None, None, parts[0]
    elif len(parts) == 2:
        host_ip, host_port, container = None, parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_port, container = parts
    else:
        raise FlowError("%s: port %r is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]." % (where, item))
    if "-" in container or (host_port and "-" in host_port):
        raise FlowError("%s: port ranges like %r are not supported; list each port." % (where, item))
    return PortSpec(
        container_port=_port_number(container, where),
        protocol=protocol,
        host_ip=host_ip or None,
        host_port=_port_number(host_port, where) if host_port else None,
    )


def _long_port(item: dict[str, Any], where: str) -> PortSpec:
    unknown = set(item) - _LONG_PORT_KEYS
    if unknown or "target" not in item:
        raise FlowError("%s: port %r needs target and only target, published, host_ip, protocol, mode." % (where, item))
    published = item.get("published")
    protocol = str(item.get("protocol", "tcp"))
    if protocol not in PORT_PROTOCOLS:
        raise FlowError("%s: port %r has an unknown protocol %r (tcp, udp, sctp)." % (where, item, protocol))
    mode = item.get("mode")
    if mode is not None and mode not in PORT_MODES:
        raise FlowError("%s: port %r has an unknown mode %r (%s)." % (where, item, mode, ", ".join(PORT_MODES)))
    return PortSpec(
        container_port=_port_number(item["target"], where),
        protocol=protocol,
        host_ip=item.get("host_ip"),
        host_port=_port_number(published, where) if published not in (None, "") else None,
        mode=mode,
    )


def _port_number(value: Any, where: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise FlowError("%s: %r is not a port number." % (where, value))
    if not 1 <= number <= 65535:
        raise FlowError("%s: port %d is outside 1-65535." % (where, number))
    return number
