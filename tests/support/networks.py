# -*- coding: utf-8 -*-
"""The host's own address on a Docker bridge network, for tests that need an address beyond
loopback that only this host (and its containers) reach."""

from __future__ import annotations

import ipaddress
import subprocess


def interface_ipv4(name):
    """The first IPv4 address of the host's network interface ``name``, or None."""
    completed = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name], capture_output=True, text=True,
                               check=False)
    for line in completed.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    return None


def bridge_host_address(network_attrs, read_interface=interface_ipv4):
    """The host's address on the bridge network ``network_attrs`` (``docker network inspect``).

    Where it always is: the address of the bridge's interface (``docker0`` for the default bridge).
    The IPAM ``Gateway`` is not always listed (Debian's docker.io 20.10 gives only the ``Subnet``
    of the default bridge), so it only comes second, then the first host of the subnet, which
    is what the engine gives the bridge when nothing else is configured.
    """
    name = (network_attrs.get("Options") or {}).get("com.docker.network.bridge.name")
    address = read_interface(name) if name else None
    if address:
        return address
    for config in (network_attrs.get("IPAM") or {}).get("Config") or []:
        gateway = config.get("Gateway", "").split("/")[0]
        if gateway and ipaddress.ip_address(gateway).version == 4:
            return gateway
        subnet = ipaddress.ip_network(config["Subnet"], strict=False) if config.get("Subnet") else None
        if subnet is not None and subnet.version == 4:
            return str(next(subnet.hosts()))
    raise AssertionError("network %s has no IPv4 address for the host: %r" % (network_attrs.get("Name"), network_attrs))
