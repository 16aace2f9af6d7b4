# -*- coding: utf-8 -*-
"""flow_scale and flow_stop_old against a real engine and Consul."""

from __future__ import annotations

from conftest import APP_V2, wait_for


def test_relative_and_absolute_scaling(flow_project):
    flow_project.run("flow_deploy")
    checked = flow_project.run("flow_scale", {"scale": "+2"}, check=True)
    assert checked["changed"] and checked["instances_count"] == 3
    assert len(flow_project.running()) == 1, "check mode starts nothing"

    up = flow_project.run("flow_scale", {"scale": "+2"})
    assert (up["changed"], up["color"], up["instances_count"]) == (True, "blue", 3)
    blue = flow_project.running("blue")
    assert len(blue) == 3
    assert {flow_project.answer(c)["color"] for c in blue} == {"blue"}
    assert len(flow_project.registrations()) == 3
    assert flow_project.state()["colors"]["blue"]["instances"] == 3

    newest = max(blue, key=lambda c: c.attrs["Created"]).name
    down = flow_project.run("flow_scale", {"scale": "-1"})
    assert down["instances_count"] == 2
    assert newest not in [c.name for c in flow_project.containers()], "the newest instance goes first"
    assert len(flow_project.registrations()) == 2

    same = flow_project.run("flow_scale", {"scale": "2"})
    assert same["changed"] is False
    absolute = flow_project.run("flow_scale", {"scale": "3"})
    assert absolute["instances_count"] == 3 and len(flow_project.running("blue")) == 3

    floor = flow_project.run("flow_scale", {"scale": "-10"})
    assert floor["instances_count"] == 1, "the count never drops below one"
    before = flow_project.snapshot()
    refused = flow_project.run("flow_scale", {"scale": "+10", "max_instances": 2}, expect_failure=True)
    assert refused["msg"] == "scale=+10 would run 11 instance(s) (1 run now), more than max_instances=2."
    assert flow_project.snapshot() == before


def test_a_scale_up_above_max_instances_fails_and_never_scales_down(flow_project):
    # Issue 10, hole 5: +1 of 3 with max_instances=2 gave 2, and flow_scale removed an instance.
    flow_project.run("flow_deploy", {"scale": "3"})
    before = flow_project.snapshot()
    refused = flow_project.run("flow_scale", {"scale": "+1", "max_instances": 2}, expect_failure=True)
    assert refused["msg"] == "scale=+1 would run 4 instance(s) (3 run now), more than max_instances=2."
    assert flow_project.snapshot() == before and len(flow_project.running("blue")) == 3
    refused = flow_project.run("flow_deploy", {"scale": "4", "max_instances": 2, "force": True}, expect_failure=True)
    assert refused["msg"] == "scale=4 would run 4 instance(s) (3 run now), more than max_instances=2."
    assert flow_project.snapshot() == before


def test_a_plain_deploy_of_a_routed_service_leaves_the_routed_color_serving(routed_project, proxy):
    # Issue 10, hole 6: blue_green=false recorded plain as live at deploy time while the proxy routed
    # blue, so stop-old (before any switch) stopped blue and the route had no server left.
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    routed_project.set_image(APP_V2)
    plain = routed_project.run("flow_deploy", {"health_path": "/health", "blue_green": False})
    assert (plain["color"], plain["live_color"]) == ("plain", "blue")
    stopped = routed_project.run("flow_stop_old")
    assert stopped["live_color"] == "blue" and stopped["stopped"] == ["%s-app-1" % routed_project.name]
    assert [c.name for c in routed_project.running("blue")] == ["%s-app-blue-1" % routed_project.name]
    status, body = proxy.get("/demo")
    assert status == 200 and (body["color"], body["version"]) == ("blue", "1")
    state = routed_project.state()
    assert (state["live_color"], state["routes"]["color"]) == ("blue", "blue")
    # The switch to the plain release goes through the proxy, like any other: then stop-old stops blue.
    routed_project.run("flow_deploy", {"health_path": "/health", "blue_green": False})
    routed_project.run("flow_proxy")
    assert proxy.get("/demo")[1]["color"] == "plain"
    routed_project.run("flow_stop_old")
    assert routed_project.running("blue") == [] and proxy.get("/demo")[1]["version"] == "2"


def test_scaled_instances_copy_the_release_not_the_current_compose_file(flow_project):
    flow_project.run("flow_deploy")
    flow_project.set_image(APP_V2)  # edited after the release: scaling must not pick it up
    flow_project.run("flow_scale", {"scale": "+1"})
    assert {flow_project.answer(c)["version"] for c in flow_project.running("blue")} == {"1"}


def test_stop_old_stops_but_keeps_the_previous_color(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    flow_project.set_image(APP_V2)
    flow_project.run("flow_deploy", {"scale": "2"})
    assert len(flow_project.registrations()) == 3

    checked = flow_project.run("flow_stop_old", check=True)
    assert checked["changed"] and checked["stopped"] == ["%s-app-blue-1" % flow_project.name]
    assert len(flow_project.running()) == 3

    stopped = flow_project.run("flow_stop_old")
    assert stopped["live_color"] == "green"
    blue = flow_project.containers("blue")
    assert [c.status for c in blue] == ["exited"], "stopped, not removed: a rollback can start it"
    assert len(flow_project.running("green")) == 2
    assert all("green" in entry["Tags"] for entry in flow_project.registrations().values())
    assert len(flow_project.registrations()) == 2
    state = flow_project.state()
    assert state["live_color"] == "green" and state["colors"]["blue"]["state"] == "stopped"

    assert flow_project.run("flow_stop_old")["changed"] is False


def test_keep_releases_zero_removes_old_containers(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    flow_project.set_image(APP_V2)
    flow_project.run("flow_deploy")
    removed = flow_project.run("flow_stop_old", {"keep_releases": 0})
    assert removed["removed"] == ["%s-app-blue-1" % flow_project.name]
    assert flow_project.containers("blue") == []


def test_deploy_after_stop_old_replaces_the_stopped_color(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    flow_project.set_image(APP_V2)
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")  # green live, blue stopped
    flow_project.set_image("dockerflow-test/app:1")
    third = flow_project.run("flow_deploy")
    assert (third["color"], third["release"]) == ("blue", 3)
    blue = flow_project.containers("blue")
    assert [(c.status, c.labels["dockerflow.release"]) for c in blue] == [("running", "3")]
    wait_for(lambda: len(flow_project.running("green")) == 1, what="green still running")
