# -*- coding: utf-8 -*-
"""Deploys of one service started at once, under load: they serialize on the service's lock.

A first deploy is held at a known step while it owns the lock; an impatient second one fails
naming it, a patient third one waits and then deploys after it. No state update is lost and
only one color ends up live.
"""

from __future__ import annotations

import time

from conftest import APP_ONLY, APP_V2, FAST, BackgroundRun, assert_consistent, consul_get, report, routed, wait_for

PATH = "/twice"
DEPLOY = dict(FAST, health_path="/health", force=True)


def lock_sessions(project):
    """Consul sessions of deploys of this service: one holds the lock, the others wait for it."""
    name = "dockerflow-deploy-%s" % project.service
    return [s for s in consul_get("/v1/session/list", project.consul_url) if s["Name"] == name]


def test_deploys_at_once_wait_or_fail_naming_the_holder(make_project, proxy, loads):
    project = routed(make_project(APP_ONLY), proxy, PATH, DEPLOY)
    load = loads(proxy, PATH)
    project.set_image(APP_V2)

    first = BackgroundRun(project, "flow_deploy", DEPLOY, pause_at="deploy:healthy")
    holder_pid = first.wait_paused()
    before = project.snapshot()
    impatient = project.run("flow_deploy", dict(DEPLOY, lock_timeout=3), expect_failure=True)
    assert "is locked by" in impatient["msg"] and "pid %d" % holder_pid in impatient["msg"], impatient["msg"]
    assert "(deploy, " in impatient["msg"] and "gave up after waiting 3s (lock_timeout)" in impatient["msg"]
    assert project.snapshot() == before, "the deploy that gave up changed nothing"

    patient = BackgroundRun(project, "flow_deploy", DEPLOY)
    wait_for(lambda: len(lock_sessions(project)) == 2, timeout=60, what="the patient deploy's lock session beside the first's")
    first.resume()
    first_result, patient_result = first.result(), patient.result()
    assert any("waiting for the lock" in step for step in patient_result["steps"]), patient_result["steps"]
    assert (first_result["release"], patient_result["release"]) == (2, 3)
    state = project.state()
    assert [r["release"] for r in state["releases"]] == [1, 2, 3], "no state update was lost"
    assert state["live_color"] == "blue" and state["deployed_color"] == "green"

    project.run("flow_proxy", FAST)
    project.run("flow_stop_old", FAST)
    time.sleep(1)
    summary = load.stop()
    facts = assert_consistent(project, 1)
    assert facts["live"] == "green" and facts["kv_release"] == 3, facts
    assert summary["failed"] == 0, summary
    report("deploys at once", summary, True, live=facts["live"], releases="1,2,3", lock_timeout_named_holder=True)
