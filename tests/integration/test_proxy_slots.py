# -*- coding: utf-8 -*-
"""The proxy's server slots per color (proxy_max_servers): a real HAProxy, Consul DNS and engine.

Issue 10, hole 7: every color had 32 server-template slots, silently; flow_scale accepted 999,999
instances and the ones beyond 32 ran, passed their checks and got no request."""

from __future__ import annotations

import json

from conftest import consul_put, wait_for


def test_the_slots_are_a_proxy_option_recorded_in_the_route_that_deploy_and_scale_keep_to(routed_project, proxy):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed = routed_project.run("flow_proxy", {"service_path": ["/demo"], "proxy_max_servers": 2})
    assert routed["live_color"] == "blue" and routed_project.state()["routes"]["max_servers"] == 2
    assert "server-template b 1-2 _%s._blue.service.consul" % routed_project.service in proxy.config()

    before = routed_project.snapshot()
    refused = routed_project.run("flow_scale", {"scale": "+2"}, expect_failure=True)
    assert refused["msg"] == (
        "scale=+2 would run 3 blue instance(s) of %s, but proxy %s routes to at most 2 of one color (proxy_max_servers, "
        "recorded when flow_proxy last routed %s); route it again with a larger proxy_max_servers first."
        % (routed_project.service, proxy.name, routed_project.service))
    refused = routed_project.run("flow_deploy", {"health_path": "/health", "scale": "3", "force": True},
                                 expect_failure=True)
    assert refused["msg"].startswith("scale=3 would run 3 green instance(s) of %s" % routed_project.service)
    assert routed_project.snapshot() == before

    assert routed_project.run("flow_scale", {"scale": "+1"})["instances_count"] == 2
    wait_for(lambda: proxy.servers_up("be_%s_blue" % routed_project.service) == 2, timeout=10, what="2 servers up")
    refused = routed_project.run("flow_proxy", {"proxy_max_servers": 1}, expect_failure=True)
    assert refused["msg"] == ("%s (blue) runs 2 instances, more than proxy_max_servers=1 (servers of one color the proxy "
                              "routes to): raise proxy_max_servers, or scale it down; not switching." % routed_project.service)
    assert "server-template b 1-2 " in proxy.config() and proxy.get("/demo")[0] == 200


def resolved_servers(proxy, backend):
    """Servers of ``backend`` the running worker has an address for (from Consul DNS)."""
    lines = proxy.runtime("show servers state %s" % backend).splitlines()
    header = next(line for line in lines if line.startswith("# be_id"))
    address = header.lstrip("# ").split().index("srv_addr")
    rows = [line.split() for line in lines if line and not line.startswith("#") and len(line.split()) > address]
    return sum(1 for row in rows if row[address] not in ("-", "0.0.0.0"))


def test_slots_beyond_what_one_default_dns_answer_holds_are_all_filled(routed_project, proxy):
    # Consul 1.8 drops SRV answers beyond about 135 in 8192 bytes (HAProxy's accepted_payload_size
    # here before): the payload now grows with the slots. 159 passing registrations without a
    # container stand in for instances (addresses on loopback, nothing listens: they go DOWN, but
    # each slot HAProxy fills has its address).
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"], "proxy_max_servers": 200})
    assert "accepted_payload_size 26624" in proxy.config()
    for number in range(1, 160):
        consul_put("/v1/agent/service/register", json.dumps({
            "ID": "%s-slot-%d" % (routed_project.service, number), "Name": routed_project.service, "Tags": ["blue"],
            "Address": "127.0.%d.%d" % (1 + number // 250, 1 + number % 250), "Port": 1,
            "Meta": {"dockerflow-service": routed_project.service},
        }).encode())
    backend = "be_%s_blue" % routed_project.service
    filled = wait_for(lambda: resolved_servers(proxy, backend) >= 160 and resolved_servers(proxy, backend), timeout=30,
                      what="160 servers resolved from Consul DNS")
    print("servers resolved in %s: %d of 160 registered" % (backend, filled))
    assert filled == 160
    assert proxy.get("/demo")[0] == 200
