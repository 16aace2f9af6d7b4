# -*- coding: utf-8 -*-
"""tests/support/networks.bridge_host_address: the host's address on a Docker bridge, also on an
engine whose default bridge lists no IPAM Gateway (Debian's docker.io 20.10: ``make test`` on a
fresh machine failed with KeyError: 'Gateway'). The interface lookup is a stand-in here; the
integration test test_security_proxy_endpoints uses the real docker0."""

from __future__ import annotations

import pytest

from support.networks import bridge_host_address, interface_ipv4

# The default bridge as a fresh Debian docker.io shows it: a Subnet and no Gateway.
DEBIAN_DEFAULT_BRIDGE = {
    "Name": "bridge",
    "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": "172.17.0.0/16"}]},
    "Options": {"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.name": "docker0"},
}


def no_interface(name):
    return None


def test_without_a_gateway_the_bridge_interface_gives_the_address():
    assert bridge_host_address(DEBIAN_DEFAULT_BRIDGE, read_interface={"docker0": "172.17.0.1"}.get) == "172.17.0.1"


def test_without_a_gateway_or_interface_the_first_host_of_the_subnet():
    assert bridge_host_address(DEBIAN_DEFAULT_BRIDGE, read_interface=no_interface) == "172.17.0.1"


def test_the_interface_wins_over_the_first_host_and_a_listed_gateway_comes_before_it():
    # dockerd --bip 10.1.0.5/24: the bridge is not the subnet's first host.
    bip = {"IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.5"}]},
           "Options": {"com.docker.network.bridge.name": "docker0"}}
    assert bridge_host_address(bip, read_interface={"docker0": "10.1.0.5"}.get) == "10.1.0.5"
    assert bridge_host_address(bip, read_interface=no_interface) == "10.1.0.5"
    no_gateway = {"IPAM": {"Config": [{"Subnet": "10.1.0.0/24"}]}, "Options": {"com.docker.network.bridge.name": "docker0"}}
    assert bridge_host_address(no_gateway, read_interface={"docker0": "10.1.0.5"}.get) == "10.1.0.5"


def test_an_ipv6_only_subnet_is_skipped_for_the_ipv4_one():
    dual = {"IPAM": {"Config": [{"Subnet": "fd00::/64", "Gateway": "fd00::1"}, {"Subnet": "192.168.7.0/24"}]}}
    assert bridge_host_address(dual, read_interface=no_interface) == "192.168.7.1"


def test_a_network_without_any_ipv4_address_is_an_assertion_naming_it():
    with pytest.raises(AssertionError, match="network v6 has no IPv4 address"):
        bridge_host_address({"Name": "v6", "IPAM": {"Config": [{"Subnet": "fd00::/64"}]}}, read_interface=no_interface)


def test_the_interface_lookup_reads_the_host_and_answers_none_for_a_missing_interface():
    assert interface_ipv4("lo") == "127.0.0.1"
    assert interface_ipv4("dftest-no-such-if") is None
