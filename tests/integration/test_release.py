# -*- coding: utf-8 -*-
"""flow_release: deploy, switch and stop-old in one task, on the real engine, Consul and HAProxy, under HTTP load."""

from __future__ import annotations

import os
import sys
import time

from conftest import APP_UNHEALTHY, APP_V2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from loadgen import LoadGenerator  # noqa: E402  (the benchmarks' bounded loopback load generator)

RELEASE = {"health_path": "/health", "service_path": ["/demo"]}


def first_release(project):
    released = project.run("flow_release", RELEASE)
    assert released["changed"] and (released["color"], released["live_color"]) == ("blue", "blue"), released
    return released


def test_a_release_under_load_fails_no_request_and_a_rerun_changes_nothing(routed_project, proxy):
    first_release(routed_project)
    load = LoadGenerator("http://127.0.0.1:%d/demo" % proxy.http_port, connections=16, max_requests=200000,
                         max_seconds=90).start()
    try:
        time.sleep(1)
        routed_project.set_image(APP_V2)
        released = routed_project.run("flow_release", RELEASE)
        time.sleep(1)
    finally:
        summary = load.stop().summary()
    assert summary["failed"] == 0, summary
    assert summary["by_color"].get("blue") and summary["by_color"].get("green"), summary
    assert released["changed"] and (released["color"], released["release"]) == ("green", 2), released
    assert (released["previous_color"], released["live_color"]) == ("blue", "green"), released
    assert released["stopped"] == ["%s-app-blue-1" % routed_project.name], released
    assert list(released["timings"]) == ["deploy", "proxy", "stop_old"], released["timings"]
    steps = released["steps"]
    started = next(i for i, step in enumerate(steps) if step.startswith("starting release 2 as green"))
    serves = next(i for i, step in enumerate(steps) if step.startswith("proxy serves %s from green" % routed_project.service))
    drained = next(i for i, step in enumerate(steps) if "drained" in step)
    assert started < serves < drained, steps
    assert all(proxy.get("/demo")[1]["color"] == "green" for _request in range(10))
    assert routed_project.state()["live_color"] == "green"
    assert [c.name for c in routed_project.running()] == ["%s-app-green-1" % routed_project.name]

    before = routed_project.snapshot()
    again = routed_project.run("flow_release", RELEASE)
    assert again["changed"] is False, again
    assert (again["color"], again["live_color"], again["stopped"]) == ("green", "green", []), again
    assert routed_project.snapshot() == before


def test_check_mode_says_what_each_step_would_do_and_changes_nothing(routed_project, proxy):
    first_release(routed_project)
    routed_project.set_image(APP_V2)
    before = routed_project.snapshot()
    checked = routed_project.run("flow_release", RELEASE, check=True, diff=True)
    assert checked["changed"] and (checked["color"], checked["live_color"]) == ("green", "green"), checked
    assert checked["previous_color"] == "blue", checked
    assert checked["steps"][-3:] == [
        "would run release 2 as green with 1 instance(s)",
        "would route %s to green through the proxy and make it live" % routed_project.service,
        "would then stop the releases of %s that are not green" % routed_project.service,
    ], checked["steps"]
    assert checked["diff"][0]["after"]["deployed_color"] == "green", checked["diff"]
    assert routed_project.snapshot() == before
    assert proxy.get("/demo")[1]["color"] == "blue"


def test_an_unhealthy_release_fails_and_the_live_color_keeps_serving(routed_project, proxy):
    first_release(routed_project)
    before = routed_project.snapshot()
    routed_project.set_image(APP_UNHEALTHY)
    failed = routed_project.run("flow_release", dict(RELEASE, health_timeout=20), expect_failure=True)
    assert "unhealthy" in failed["msg"] and "blue keeps serving" in failed["msg"], failed["msg"]
    assert routed_project.containers("green") == [], "the failed release's containers are removed"
    assert routed_project.snapshot() == before
    assert all(proxy.get("/demo")[1]["color"] == "blue" for _request in range(5))


def test_a_refused_switch_leaves_the_new_release_deployed_not_live_and_a_rerun_finishes(routed_project, proxy):
    first_release(routed_project)
    routed_project.set_image(APP_V2)
    # Two instances, and a proxy with one server slot a color: the deploy passes (it checks the slots the last switch
    # recorded), the switch refuses.
    failed = routed_project.run("flow_release", dict(RELEASE, scale="2", proxy_max_servers=1), expect_failure=True)
    assert "not switching" in failed["msg"].lower() or "slot" in failed["msg"], failed["msg"]
    assert "The release stopped after the deploy: release 2 (green)" in failed["msg"], failed["msg"]
    assert list(failed["timings"]) == ["deploy", "proxy"], failed
    assert len(routed_project.running("green")) == 2 and len(routed_project.running("blue")) == 1
    state = routed_project.state()
    assert (state["live_color"], state["deployed_color"]) == ("blue", "green")
    assert all(proxy.get("/demo")[1]["color"] == "blue" for _request in range(5))

    finished = routed_project.run("flow_release", dict(RELEASE, scale="2"))
    assert finished["changed"] and (finished["color"], finished["release"], finished["live_color"]) == ("green", 2, "green")
    assert not any(step.startswith("starting release") for step in finished["steps"]), "the deploy had nothing to do"
    assert finished["stopped"] == ["%s-app-blue-1" % routed_project.name]
    assert proxy.get("/demo")[1]["color"] == "green"


def test_a_bad_route_fails_before_the_deploy(routed_project, proxy):
    failed = routed_project.run("flow_release", {"health_path": "/health"}, expect_failure=True)
    assert "service_path or service_domain is required" in failed["msg"], failed["msg"]
    failed = routed_project.run("flow_release", dict(RELEASE, service_path=["/a b"]), expect_failure=True)
    assert "service_path" in failed["msg"], failed["msg"]
    assert routed_project.containers() == [] and routed_project.state() is None
