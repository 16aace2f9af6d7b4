# -*- coding: utf-8 -*-
"""The proxy's own endpoints (statistics page, runtime API, master CLI) take no password, so they
bind to the proxy host's loopback unless proxy_stats_address / proxy_admin_address say otherwise,
and then the module warns. Checked on the sockets a real proxy listens on (it shares the host's
network namespace, so /proc/net/tcp of this host lists them)."""

from __future__ import annotations

import ipaddress
import socket
import struct

from conftest import wait_for
from support.networks import bridge_host_address


def listening(port):
    """Local IPv4 addresses with a listening TCP socket on ``port`` (from /proc/net/tcp)."""
    addresses = set()
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            local, state = fields[1], fields[3]
            address_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                addresses.add(socket.inet_ntoa(struct.pack("<I", int(address_hex, 16))))
    return addresses


def proxy_ports(options):
    return {name: options["proxy_%s_port" % name] for name in ("http", "stats", "admin", "master")}


def test_endpoints_bind_to_loopback_by_default(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed = routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    assert not [w for w in routed.get("warnings", []) if "proxy_" in w], routed.get("warnings")
    ports = proxy_ports(proxy.options)
    for name in ("stats", "admin", "master"):
        assert wait_for(lambda name=name: listening(ports[name]), timeout=10, what="%s port" % name) == {"127.0.0.1"}, name
    config = proxy.config()
    assert "    stats socket ipv4@127.0.0.1:%d level admin expose-fd listeners" % ports["admin"] in config
    assert "    bind 127.0.0.1:%d" % ports["stats"] in config
    assert proxy.container().attrs["Config"]["Cmd"][:3] == ["haproxy", "-S", "ipv4@127.0.0.1:%d" % ports["master"]]


def test_addresses_move_with_the_options_and_warn_beyond_loopback(routed_project, proxy, docker_client):
    # Beyond loopback but not on the network: the host's address on the engine's default bridge
    # (docker0), which only this host's containers reach.
    bridge = bridge_host_address(docker_client.networks.get("bridge").attrs)
    assert not ipaddress.ip_address(bridge).is_loopback
    routed_project.proxy.options.update(proxy_stats_address=bridge, proxy_admin_address="127.0.0.2")
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed = routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    # The switch itself talked to the runtime API and the master CLI on 127.0.0.2.
    assert routed["live_color"] == "blue" and proxy.get("/demo")[0] == 200
    assert routed["warnings"] == [
        "proxy_stats_address=%s: the statistics page (every route, backend and server) is open to anyone who "
        "reaches that address, without authentication." % bridge
    ]
    ports = proxy_ports(proxy.options)
    assert listening(ports["stats"]) == {bridge}
    assert listening(ports["admin"]) == {"127.0.0.2"} and listening(ports["master"]) == {"127.0.0.2"}
    stopped = routed_project.run("flow_stop_old")  # drains through the master CLI on 127.0.0.2
    assert not stopped.get("failed")


def test_a_bad_address_is_refused_before_anything_changes(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    before = routed_project.snapshot()
    failed = routed_project.run("flow_proxy", {"service_path": ["/demo"], "proxy_admin_address": "127.0.0.1:1 level admin"},
                                expect_failure=True)
    assert failed["msg"] == ("proxy_admin_address='127.0.0.1:1 level admin' is not valid: use an IP address, a host name "
                             "or '*'.")
    assert routed_project.snapshot() == before
    assert not proxy.docker.containers.list(all=True, filters={"name": proxy.name})
