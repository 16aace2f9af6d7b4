# -*- coding: utf-8 -*-
"""Warnings reach the user through ansible-playbook: on a failed step too (issue 10, hole 8), and for
the original's options Flow reads but does not use (hole 9)."""

from __future__ import annotations

import json

from conftest import consul_put


def test_a_failed_step_still_returns_the_warnings_of_its_flow(flow_project):
    # A lock record left by a run that died: the next run takes the lock and warns about it (a Flow
    # warning, like "undoing the new instances was incomplete"), then fails; the warning used to be lost.
    holder = {"holder": "ci@build-7", "pid": 4242, "operation": "deploy", "since": "2024-01-01T00:00:00Z"}
    consul_put("/v1/kv/dockerflow/locks/%s" % flow_project.service, json.dumps(holder).encode())
    failed = flow_project.run("flow_scale", {"scale": "+1"}, expect_failure=True)
    assert failed["msg"] == "Service %s has no release to scale; deploy it first." % flow_project.service
    left = [w for w in failed.get("warnings", []) if "ci@build-7 (deploy, pid 4242" in w]
    assert len(left) == 1 and left[0].startswith(
        "The lock of %s was left by ci@build-7 (deploy, pid 4242, since 2024-01-01T00:00:00Z), which ended without "
        "releasing it (killed, or cut off from Consul); it expired and this run took it after waiting "
        % flow_project.service), failed


def test_the_originals_proxy_host_and_reconf_port_are_ignored_with_a_warning(routed_project):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.write("docker-flow.yml", "proxy_reconf_port: 8081\n")
    routed = routed_project.run("flow_proxy", {"service_path": ["/demo"]}, env={"FLOW_PROXY_HOST": "10.100.198.200"})
    flow_file = "%s/docker-flow.yml" % routed_project.dir
    assert routed["live_color"] == "blue"
    assert routed["warnings"] == [
        "proxy_host (set in FLOW_PROXY_HOST) is ignored: the original sent docker-flow-proxy's reconfigure requests to "
        "that host; Flow runs and reconfigures HAProxy through the Docker engine of the proxy host: proxy_docker_host "
        "(else docker_host) names it.",
        "proxy_reconf_port (set in %s) is ignored: it was the port of docker-flow-proxy's reconfigure API, which Flow "
        "does not use (it renders HAProxy's configuration and reloads it through proxy_docker_host): remove it."
        % flow_file,
    ]
    # A step that never talked to the original's proxy says nothing about them.
    assert not routed_project.run("flow_info", env={"FLOW_PROXY_HOST": "10.100.198.200"}).get("warnings")
