# -*- coding: utf-8 -*-
"""flow_deploy against a real engine and Consul."""

from __future__ import annotations

import threading
import time

from conftest import APP_NO_HEALTHCHECK, APP_UNHEALTHY, APP_V2, http_json, wait_for


def test_first_deploy_is_blue_check_real_idempotent(flow_project):
    checked = flow_project.run("flow_deploy", check=True, diff=True)
    assert checked["changed"] is True
    assert checked["color"] == "blue"
    assert checked["diff"]["after"]["deployed_color"] == "blue"
    assert flow_project.containers() == [], "check mode must not start anything"
    assert flow_project.state() is None, "check mode must not write state"

    deployed = flow_project.run("flow_deploy")
    assert deployed["changed"] is True
    assert (deployed["color"], deployed["release"]) == ("blue", 1)
    blue = flow_project.running("blue")
    assert [c.name for c in blue] == ["%s-app-blue-1" % flow_project.name]
    answer = flow_project.answer(blue[0])
    assert answer["color"] == "blue" and answer["version"] == "1"
    labels = blue[0].labels
    assert labels["dockerflow.service"] == flow_project.service
    assert labels["com.docker.compose.project"] == flow_project.name
    assert labels["dockerflow.release"] == "1"
    state = flow_project.state()
    assert state["deployed_color"] == "blue" and state["live_color"] is None
    assert state["colors"]["blue"]["instances"] == 1
    assert state["releases"][-1]["image"] == "dockerflow-test/app:1"
    assert state["releases"][-1]["deployed_by"]
    # the side target named by depends_on runs, uncolored
    db = flow_project.docker.containers.get("%s-db-1" % flow_project.name)
    assert db.status == "running" and "dockerflow.service" not in db.labels

    again = flow_project.run("flow_deploy")
    assert again["changed"] is False
    assert [c.id for c in flow_project.running()] == [c.id for c in blue]


def test_instances_are_registered_in_consul_with_color_tag_and_passing_check(flow_project):
    flow_project.run("flow_deploy")
    registrations = flow_project.registrations()
    assert len(registrations) == 1
    entry = next(iter(registrations.values()))
    assert entry["Service"] == flow_project.service
    assert "blue" in entry["Tags"]
    assert entry["Port"] == flow_project.port_of(flow_project.running("blue")[0])

    def passing():
        checks = __import__("conftest").consul_get("/v1/health/service/%s?passing=1" % flow_project.service)
        return len(checks) == 1

    wait_for(passing, timeout=15, what="Consul health check passing")


def test_second_deploy_runs_next_color_at_live_count(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_scale", {"scale": "3"})
    flow_project.run("flow_stop_old")  # nothing routes the service: blue becomes live
    assert flow_project.state()["live_color"] == "blue"

    flow_project.set_image(APP_V2)
    deployed = flow_project.run("flow_deploy")
    assert (deployed["color"], deployed["release"]) == ("green", 2)
    green = flow_project.running("green")
    assert len(green) == 3
    assert {flow_project.answer(c)["version"] for c in green} == {"2"}
    assert len(flow_project.running("blue")) == 3, "the live color keeps running"
    state = flow_project.state()
    assert (state["live_color"], state["deployed_color"]) == ("blue", "green")


def test_two_deploys_without_a_switch_never_touch_the_live_color(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    blue_ids = [c.id for c in flow_project.running("blue")]

    flow_project.set_image(APP_V2)
    first = flow_project.run("flow_deploy")
    second = flow_project.run("flow_deploy", {"force": True})
    assert first["color"] == second["color"] == "green"
    assert second["release"] == first["release"] + 1
    assert [c.id for c in flow_project.running("blue")] == blue_ids
    green = flow_project.containers("green")
    assert len(green) == 1 and green[0].labels["dockerflow.release"] == str(second["release"])
    assert flow_project.state()["live_color"] == "blue"


def test_unhealthy_release_is_rolled_back_and_live_keeps_serving(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    live_port = flow_project.port_of(flow_project.running("blue")[0])
    before = flow_project.snapshot()

    stop = threading.Event()
    outcomes = {"ok": 0, "failed": 0}

    def traffic():
        while not stop.is_set():
            try:
                status, body = http_json(live_port, timeout=2)
                outcomes["ok" if status == 200 and body["color"] == "blue" else "failed"] += 1
            except OSError:
                outcomes["failed"] += 1
            time.sleep(0.02)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        flow_project.set_image(APP_UNHEALTHY)
        failed = flow_project.run("flow_deploy", {"health_timeout": 40}, expect_failure=True)
    finally:
        stop.set()
        worker.join()
    assert "unhealthy" in failed["msg"] and "blue keeps serving" in failed["msg"], failed["msg"]
    assert failed["failed_instance"].endswith("-app-green-1")
    assert isinstance(failed["logs"], list)
    assert flow_project.containers("green") == [], "the failed release's containers are removed"
    assert flow_project.snapshot() == before, "state, registrations and live containers are unchanged"
    assert outcomes["failed"] == 0 and outcomes["ok"] > 10, outcomes


def test_instance_that_exits_fails_with_its_logs(flow_project):
    flow_project.write_compose(
        {"services": {"app": {"image": APP_NO_HEALTHCHECK, "ports": ["8080"],
                              "command": ["sh", "-c", "echo cannot open database >&2; exit 3"]}}}
    )
    failed = flow_project.run("flow_deploy", expect_failure=True)
    assert "exited with code 3" in failed["msg"] and "cannot open database" in failed["msg"], failed["msg"]
    assert "cannot open database" in failed["logs"]
    assert flow_project.containers() == []
    assert flow_project.state() is None


def test_image_without_healthcheck_waits_on_http_path(flow_project):
    flow_project.write_compose({"services": {"app": {"image": APP_NO_HEALTHCHECK, "ports": ["8080"]}}})
    deployed = flow_project.run("flow_deploy", {"health_path": "/health"})
    assert any("HTTP GET /health" in step for step in deployed["steps"]), deployed["steps"]
    registration = next(iter(flow_project.registrations().values()))
    assert registration["Port"] == flow_project.port_of(flow_project.running()[0])


def test_plain_mode_runs_releases_side_by_side_until_stop_old(flow_project):
    first = flow_project.run("flow_deploy", {"blue_green": False})
    assert first["color"] == "plain"
    flow_project.set_image(APP_V2)
    second = flow_project.run("flow_deploy", {"blue_green": False, "scale": "2"})
    assert (second["color"], second["release"]) == ("plain", 2)
    assert len(flow_project.running("plain")) == 3
    stopped = flow_project.run("flow_stop_old", {"blue_green": False})
    assert stopped["stopped"] == ["%s-app-1" % flow_project.name]
    running = flow_project.running("plain")
    assert {flow_project.answer(c)["version"] for c in running} == {"2"} and len(running) == 2


def test_side_targets_start_once_and_pull_failure_is_clear(flow_project):
    flow_project.run("flow_deploy", {"side_targets": ["db"]})
    flow_project.set_image(APP_V2)
    flow_project.run("flow_deploy", {"side_targets": ["db"]})
    dbs = flow_project.docker.containers.list(
        all=True, filters={"label": ["com.docker.compose.project=%s" % flow_project.name, "com.docker.compose.service=db"]}
    )
    assert len(dbs) == 1 and dbs[0].status == "running"
    # No registry is reachable here, so a requested pull must fail and say which image.
    failed = flow_project.run("flow_deploy", {"side_targets": ["db"], "pull_side_targets": True, "force": True},
                              expect_failure=True)
    assert "dockerflow-test/base:bookworm" in failed["msg"], failed["msg"]


def test_compose_features_reach_the_container(flow_project):
    flow_project.write(".env", "GREETING=hello\n")
    flow_project.write("app.env", "FROM_FILE=yes\n")
    flow_project.write_compose(
        {
            "services": {
                "base": {"image": "dockerflow-test/app:1", "labels": {"team": "books"}},
                "app": {
                    "extends": {"service": "base"},
                    "ports": ["8080"],
                    "environment": {"GREETING": "${GREETING}", "LEVEL": "${LEVEL:-info}"},
                    "env_file": ["app.env"],
                    "volumes": ["./:/srv/project:ro", "data:/data"],
                    "networks": {"back": {"aliases": ["books"]}},
                    "restart": "unless-stopped",
                },
            },
            "networks": {"back": {}},
            "volumes": {"data": {}},
        }
    )
    flow_project.run("flow_deploy")
    container = flow_project.running("blue")[0]
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert (env["GREETING"], env["LEVEL"], env["FROM_FILE"]) == ("hello", "info", "yes")
    assert env["DOCKERFLOW_COLOR"] == "blue"
    assert container.labels["team"] == "books"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/srv/project"]["RW"] is False and mounts["/data"]["Name"] == "%s_data" % flow_project.name
    network = container.attrs["NetworkSettings"]["Networks"]["%s_back" % flow_project.name]
    assert "books" in network["Aliases"]
