# -*- coding: utf-8 -*-
"""Replacing the proxy container (another proxy_image) without a gap: the new container takes the listening
sockets over from the old one (haproxy -x), then the old one finishes its requests and goes (issue 14)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest
from test_proxy import deploy_and_route

from conftest import APP_V2, PROXY_IMAGE, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from https_load import HttpsLoad  # noqa: E402  (the benchmarks' HTTPS load: SNI, verified against the test CA)

from loadgen import LoadGenerator  # noqa: E402  (the benchmarks' bounded loopback load generator)

SHOP = "shop.example.com"


@pytest.fixture
def other_tag(docker_client):
    """Another tag of the proxy's image: to the flow another proxy_image, to HAProxy the same program."""
    tag = "dockerflow-test/haproxy:replacement-test-%s" % uuid.uuid4().hex[:8]
    docker_client.images.get(PROXY_IMAGE).tag(tag)
    yield tag
    docker_client.images.remove(tag, noprune=True)


def proxy_containers(docker_client, proxy):
    """Names of the containers of the test's proxy, a retiring one included."""
    return sorted(c.name for c in docker_client.containers.list(all=True, filters={"name": proxy.name}))


def test_an_image_change_under_load_replaces_the_proxy_without_a_failed_request(
        https_project, proxy, docker_client, other_tag, ca):
    """HTTP and HTTPS (a recorded certificate; TLS a request and keep-alive) both under load: the new container
    takes the HTTPS socket over as well."""
    cert, key = ca.issue(SHOP)
    deploy_and_route(https_project, proxy_certificates=[{"name": "shop", "cert": cert, "key": key}])
    https_project.run("flow_scale", {"scale": "2"})
    old_id = proxy.container().id
    url = "http://127.0.0.1:%d/demo" % proxy.http_port
    loads = [LoadGenerator(url, connections=3, max_requests=100000, max_seconds=120).start(),
             LoadGenerator(url, connections=2, max_requests=100000, max_seconds=120, fresh_connections=True).start()]
    https_loads = [HttpsLoad(proxy.https_port, SHOP, ca.cert, "/demo", fresh=fresh) for fresh in (True, False)]
    for load in https_loads:
        load.start()
    try:
        time.sleep(1)
        replaced = https_project.run("flow_proxy", {"state": "synced", "proxy_image": other_tag})
        time.sleep(1)
    finally:
        results = [load.stop().summary() for load in loads]
        for load in https_loads:
            load.finish()
    assert replaced["changed"] and replaced["proxy_outcome"] == "replaced", replaced
    assert replaced["proxy_replaced"] == ["runs image %s, not %s (proxy_image)" % (PROXY_IMAGE, other_tag)]
    assert any(step.startswith("proxy %s replaced without a gap" % proxy.name) for step in replaced["steps"])
    assert not replaced.get("warnings"), replaced.get("warnings")
    for summary in results:
        assert summary["failed"] == 0 and summary["requests"] > 50, results
    assert [load.failed for load in https_loads] == [0, 0], [load.errors[:3] for load in https_loads]
    assert all(load.ok > 10 for load in https_loads), [load.ok for load in https_loads]
    container = proxy.container()
    assert container.id != old_id and container.attrs["Config"]["Image"] == other_tag
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert proxy_containers(docker_client, proxy) == [proxy.name], "the old container is gone"
    assert proxy.get("/demo")[0] == 200
    after = HttpsLoad(proxy.https_port, SHOP, ca.cert, "/demo")
    after.start()
    wait_for(lambda: after.ok >= 3, timeout=10, what="HTTPS answers of the new container")
    after.finish()
    assert after.failed == 0 and list(after.handshakes) == list(https_loads[0].handshakes), "the same certificate"

    # The new container serves the next switch and survives a restart of its own (no old one to take sockets from).
    https_project.set_image(APP_V2)
    https_project.run("flow_deploy", {"health_path": "/health"})
    switched = https_project.run("flow_proxy", {"proxy_image": other_tag})
    assert switched["changed"] and switched["live_color"] == "green" and "proxy_replaced" not in switched
    container.restart()
    wait_for(lambda: proxy.get("/demo")[0] == 200, timeout=15, what="the route after a restart")


def test_a_new_container_that_cannot_run_leaves_the_old_one_serving_and_nothing_behind(
        routed_project, proxy, docker_client):
    deploy_and_route(routed_project)
    old_id = proxy.container().id
    load = LoadGenerator("http://127.0.0.1:%d/demo" % proxy.http_port, connections=2, max_requests=100000,
                         max_seconds=120).start()
    try:
        failed = routed_project.run("flow_proxy", {"state": "synced", "proxy_image": "dockerflow-test/app:1"},
                                    expect_failure=True)
    finally:
        summary = load.stop().summary()
    assert failed["msg"].startswith("Replacing proxy %s failed, so the old container keeps serving: " % proxy.name)
    assert "\n" not in failed["msg"], failed["msg"]
    assert summary["failed"] == 0 and summary["requests"] > 10, summary
    assert proxy.container().id == old_id and proxy.container().status == "running"
    assert proxy_containers(docker_client, proxy) == [proxy.name], "nothing left behind"
    assert proxy.get("/demo")[0] == 200


def test_a_replacement_in_check_mode_is_reported_and_not_made(routed_project, proxy, other_tag):
    deploy_and_route(routed_project)
    old_id = proxy.container().id
    checked = routed_project.run("flow_proxy", {"state": "synced", "proxy_image": other_tag}, check=True)
    assert checked["changed"] and checked["proxy_replaced"] == [
        "runs image %s, not %s (proxy_image)" % (PROXY_IMAGE, other_tag)]
    assert proxy.container().id == old_id and proxy.container().attrs["Config"]["Image"] == PROXY_IMAGE


def test_a_replacement_a_killed_run_left_half_done_is_undone_by_the_next_run(routed_project, proxy, docker_client):
    """A run killed right after renaming the old container (before its successor existed): the next run gives the
    old one its name back instead of creating a second proxy beside it."""
    deploy_and_route(routed_project)
    container = proxy.container()
    container.rename("%s-retiring-%s" % (proxy.name, container.id[:12]))
    synced = routed_project.run("flow_proxy", {"state": "synced"})
    assert any(step.startswith("undid the replacement of proxy %s" % proxy.name) for step in synced["steps"]), synced
    assert proxy.container().id == container.id and proxy_containers(docker_client, proxy) == [proxy.name]
    assert proxy.get("/demo")[0] == 200


def test_a_replacement_killed_while_both_containers_serve_is_finished_by_the_next_run(
        routed_project, proxy, docker_client, other_tag):
    """SIGKILL at the pause point proxy:replacing (the new container serves beside the renamed old one): the next
    run soft-stops and removes the old one, and no request failed."""
    deploy_and_route(routed_project)
    old_id = proxy.container().id
    pause_file = pathlib.Path(routed_project.dir, "pause-replacing")
    command, env = routed_project.playbook(
        # lock_ttl 10 (Consul's least): the killed run's lock is free 20-25 s after the kill (twice the TTL, then
        # the lock-delay); at the default 30 that is 55-65 s, as long as the next run's lock_timeout.
        "flow_proxy", {"state": "synced", "proxy_image": other_tag, "lock_ttl": 10},
        env={"DOCKERFLOW_TEST_PAUSE_AT": "proxy:replacing", "DOCKERFLOW_TEST_PAUSE_FILE": str(pause_file)})
    load = LoadGenerator("http://127.0.0.1:%d/demo" % proxy.http_port, connections=3, max_requests=100000,
                         max_seconds=120).start()
    try:
        run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        module_pid = int(wait_for(lambda: pause_file.exists() and pause_file.read_text(), timeout=120,
                                  what="the run paused at proxy:replacing"))
        os.kill(module_pid, signal.SIGKILL)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        pause_file.unlink()
        retiring = "%s-retiring-%s" % (proxy.name, old_id[:12])
        assert proxy_containers(docker_client, proxy) == sorted([proxy.name, retiring])
        assert proxy.container().attrs["Config"]["Image"] == other_tag
        synced = routed_project.run("flow_proxy", {"state": "synced", "proxy_image": other_tag})
        time.sleep(1)
    finally:
        summary = load.stop().summary()
    assert "finished the replacement of proxy %s that a run left half-done (%s)" % (proxy.name, retiring) \
        in synced["steps"], synced["steps"]
    assert proxy_containers(docker_client, proxy) == [proxy.name] and proxy.get("/demo")[0] == 200
    assert summary["failed"] == 0 and summary["requests"] > 50, summary
