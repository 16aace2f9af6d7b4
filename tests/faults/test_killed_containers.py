# -*- coding: utf-8 -*-
"""Containers killed under load: one instance of the live release, then the proxy itself."""

from __future__ import annotations

import os
import signal
import time

from conftest import APP_ONLY, FAST, assert_consistent, consistency, report, wait_for

OUT_OF_ROTATION_LIMIT = 5.0  # seconds from an instance's death to the proxy no longer sending it requests


def server_rows(proxy, backend):
    """{address: row} of ``backend``'s servers in HAProxy's statistics, columns by name."""
    lines = proxy.runtime("show stat %s 4 -1" % backend).splitlines()
    assert lines and lines[0].startswith("# pxname,"), "HAProxy's statistics did not come: %s" % lines[:3]
    header = lines[0].lstrip("# ").split(",")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("addr"):
            rows[row["addr"]] = row
    return rows


def test_a_killed_instance_is_out_of_rotation_within_5_seconds(make_project, proxy, loads):
    project = make_project(APP_ONLY)
    project.proxy = proxy
    project.run("flow_deploy", dict(FAST, health_path="/health", scale="3"))
    project.run("flow_proxy", dict(FAST, service_path=["/instance"]))
    backend = "be_%s_blue" % project.service
    wait_for(lambda: len([r for r in server_rows(proxy, backend).values() if r["status"].startswith("UP")]) == 3,
             timeout=20, what="3 servers up")
    load = loads(proxy, "/instance")
    time.sleep(2)
    victim = project.running("blue")[0]
    address = "127.0.0.1:%d" % project.port_of(victim)

    killed_at = time.time()
    victim.kill()
    last = {}
    while True:
        rows = server_rows(proxy, backend)
        row = rows.get(address)
        last = row or last
        if rows and (row is None or not row["status"].startswith("UP")):
            out_at = time.time()
            break
        assert time.time() - killed_at < 30, "the proxy still sends requests to the killed instance after 30 s"
        time.sleep(0.1)
    time.sleep(2)
    failed_in_window = load.failures_between(killed_at, out_at)
    summary = load.stop()
    out_seconds = out_at - killed_at
    facts, _problems = consistency(project, 3)

    assert out_seconds <= OUT_OF_ROTATION_LIMIT, "%.1fs until the proxy stopped using the killed instance" % out_seconds
    assert len(project.running("blue")) == 2
    # Nothing restarts an instance without a restart policy: the state still counts 3, and says so to flow_info.
    report("instance killed", summary, False, out_of_rotation_s=round(out_seconds, 2),
           proxy_saw=(row or {}).get("status", "its DNS record gone"), failed_in_window=failed_in_window,
           retried=last.get("wretr"), redispatched=last.get("wredis"), kv_instances=facts["kv_instances"],
           running=facts["running"].get("blue"))
    assert summary["failed"] == 0, "requests failed after an instance was killed: %s" % summary


def test_a_killed_proxy_started_again_serves_every_route_from_consul(make_project, proxy, loads):
    first, second = make_project(APP_ONLY), make_project(APP_ONLY)
    for project, path in ((first, "/first"), (second, "/second")):
        project.proxy = proxy
        project.run("flow_deploy", dict(FAST, health_path="/health"))
        project.run("flow_proxy", dict(FAST, service_path=[path]))
    loads_by_path = {path: loads(proxy, path) for path in ("/first", "/second")}

    def all_routes_serve():
        return all(proxy.get(path, timeout=2)[0] == 200 for path in loads_by_path)

    # Killed as a crash or the OOM killer would (SIGKILL to its main process, not `docker kill`, which Docker
    # takes for a manual stop): the restart policy starts it again, with the configuration on its volume and
    # the servers from Consul DNS.
    container = proxy.container()
    killed_at = time.time()
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    wait_for(lambda: proxy.container().attrs["RestartCount"] > container.attrs["RestartCount"], timeout=15, interval=0.1,
             what="Docker restarting the killed proxy (restart policy %s)" % container.attrs["HostConfig"]["RestartPolicy"])
    wait_for(all_routes_serve, timeout=30, interval=0.1, what="both routes served again after the restart")
    back_after_restart = time.time() - killed_at
    failed_restart = sum(load.failures_between(killed_at, time.time()) for load in loads_by_path.values())

    # Removed with its volume: flow_proxy state=synced (the proxy role's step) builds it again from Consul's routes.
    removed_at = time.time()
    proxy.cleanup()
    synced = first.run("flow_proxy", dict(FAST, state="synced"))
    assert synced["changed"] and synced["proxy_outcome"] == "created", synced
    wait_for(all_routes_serve, timeout=30, interval=0.1, what="both routes served by the re-created proxy")
    back_after_rebuild = time.time() - removed_at
    failed_rebuild = sum(load.failures_between(removed_at, time.time()) for load in loads_by_path.values())
    settled = time.time()
    time.sleep(3)

    summaries = {path: load.stop() for path, load in loads_by_path.items()}
    failed_after = sum(load.failures_between(settled, time.time()) for load in loads_by_path.values())
    for project in (first, second):
        assert_consistent(project, 1)
    assert failed_after == 0, "requests failed after the routes came back: %s" % summaries
    total = {"requests": sum(s["requests"] for s in summaries.values()), "failed": sum(s["failed"] for s in summaries.values())}
    report("proxy killed, then removed", total, True, back_after_restart_s=round(back_after_restart, 1),
           failed_until_restarted=failed_restart, back_after_rebuild_s=round(back_after_rebuild, 1),
           failed_until_rebuilt=failed_rebuild)
