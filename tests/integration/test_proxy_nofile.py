# -*- coding: utf-8 -*-
"""The proxy container's file-descriptor limit, proxy_nofile (issue 15): HAProxy reserves one for each server slot,
so many routes (or slots) need more than the engine's own limit, which containers inherit (20,000 on the test
machine, whose engine can give no more: the test scales the slots to the limits it can give)."""

from __future__ import annotations

import re

from test_proxy import deploy_and_route
from test_proxy_replace import proxy_containers


def show_info(proxy, field):
    return int(re.search(r"^%s: (\d+)$" % field, proxy.runtime("show info"), re.MULTILINE).group(1))


def nofile_of(container):
    return [limit for limit in container.attrs["HostConfig"].get("Ulimits") or [] if limit["Name"] == "nofile"]


def test_a_config_whose_slots_do_not_fit_the_limit_fails_and_runs_once_the_limit_is_raised(
        routed_project, proxy, docker_client):
    deploy_and_route(routed_project, proxy_nofile=1024)
    assert nofile_of(proxy.container()) == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert show_info(proxy, "Ulimit-n") <= 1024
    old_id = proxy.container().id

    # 500 slots a color, 1,000 servers with checks: HAProxy wants ~1,215 descriptors with its least maxconn (100).
    failed = routed_project.run("flow_proxy", {"state": "synced", "proxy_nofile": 1024, "proxy_max_servers": 500},
                                expect_failure=True)
    assert "Cannot raise FD limit" in failed["msg"] and "(proxy_nofile)" in failed["msg"], failed["msg"]
    assert "The previous configuration was restored." in failed["msg"], failed["msg"]
    assert proxy.container().id == old_id and proxy.get("/demo")[0] == 200, "the proxy still serves the route"

    synced = routed_project.run("flow_proxy", {"state": "synced", "proxy_nofile": 4096, "proxy_max_servers": 500})
    assert synced["proxy_outcome"] == "replaced", synced
    assert synced["proxy_replaced"] == ["may open 1024 file descriptors, not 4096 (proxy_nofile)"], synced
    container = proxy.container()
    assert container.id != old_id and nofile_of(container) == [{"Name": "nofile", "Soft": 4096, "Hard": 4096}]
    assert proxy_containers(docker_client, proxy) == [proxy.name]
    assert "1-500 " in proxy.config() and proxy.get("/demo")[0] == 200
    # HAProxy's connection limit is what the servers leave: (4,096 - 1,000 - its listeners and threads) / 2.
    assert 1400 < show_info(proxy, "Maxconn") < 1548

    # Not set, the limit a run gave the container stays; set to the same, nothing is replaced.
    again = routed_project.run("flow_proxy", {"state": "synced", "proxy_max_servers": 500})
    assert "proxy_replaced" not in again and proxy.container().id == container.id
    same = routed_project.run("flow_proxy", {"state": "synced", "proxy_nofile": 4096, "proxy_max_servers": 500})
    assert "proxy_replaced" not in same and proxy.container().id == container.id


def test_a_limit_the_engine_cannot_give_fails_in_one_line_and_leaves_the_proxy_as_it_was(
        routed_project, proxy, docker_client):
    with open("/proc/sys/fs/nr_open", encoding="ascii") as handle:
        beyond = int(handle.read()) + 1  # no engine can give a process more than fs.nr_open
    routed_project.run("flow_deploy", {"health_path": "/health"})
    created = routed_project.run("flow_proxy", {"service_path": ["/demo"], "proxy_nofile": beyond}, expect_failure=True)
    refused = "cannot give its container proxy_nofile=%d (setrlimit: operation not permitted)" % beyond
    assert refused in created["msg"] and "\n" not in created["msg"], created["msg"]
    assert proxy_containers(docker_client, proxy) == [], "a container that never ran is not left behind"

    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    old_id = proxy.container().id
    replaced = routed_project.run("flow_proxy", {"state": "synced", "proxy_nofile": beyond}, expect_failure=True)
    assert replaced["msg"].startswith("Replacing proxy %s failed, so the old container keeps serving: " % proxy.name)
    assert refused in replaced["msg"] and "\n" not in replaced["msg"], replaced["msg"]
    assert proxy.container().id == old_id and proxy_containers(docker_client, proxy) == [proxy.name]
    assert proxy.get("/demo")[0] == 200


def test_slots_that_leave_few_connections_are_warned_of_with_the_worker_s_own_figures(routed_project, proxy):
    """Fails on the code before the warning: the proxy took the slots and said nothing of its connection limit."""
    deploy_and_route(routed_project, proxy_nofile=1536)
    # 2 colors x 500 slots take 1,000 of 1,536 descriptors: HAProxy keeps (1,536 - 1,000 - the rest) / 2 connections.
    synced = routed_project.run("flow_proxy", {"state": "synced", "proxy_max_servers": 500})
    connections = show_info(proxy, "Maxconn")
    assert connections < 500, connections
    assert synced["warnings"] == [
        "Proxy %s accepts at most %d connections at once: its 1000 server slots take a file descriptor each, of the "
        "%d it may open, and a connection takes two. Give it more (proxy_nofile) or fewer slots (proxy_max_servers)."
        % (proxy.name, connections, show_info(proxy, "Ulimit-n"))], synced
    assert proxy.get("/demo")[0] == 200

    # Back to 32 slots a color (64 servers): nothing to say.
    back = routed_project.run("flow_proxy", {"state": "synced", "proxy_max_servers": 32})
    assert "1-32 " in proxy.config() and not back.get("warnings"), back
