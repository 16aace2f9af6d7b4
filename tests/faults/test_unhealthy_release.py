# -*- coding: utf-8 -*-
"""A release whose instances never become healthy, deployed while the live one serves a load."""

from __future__ import annotations

import time

from conftest import APP_ONLY, APP_UNHEALTHY, FAST, assert_consistent, report


def test_a_release_that_never_becomes_healthy_changes_nothing_users_see(make_project, proxy, loads):
    project = make_project(APP_ONLY)
    project.proxy = proxy
    project.run("flow_deploy", dict(FAST, health_path="/health"))
    project.run("flow_proxy", dict(FAST, service_path=["/shop"]))
    load = loads(proxy, "/shop")
    before = project.snapshot()

    project.set_image(APP_UNHEALTHY)
    started = time.monotonic()
    failed = project.run("flow_deploy", dict(FAST, health_path="/health", health_timeout=8), expect_failure=True)
    seconds = time.monotonic() - started
    time.sleep(2)  # users keep being served after the failure too
    summary = load.stop()

    assert "did not become healthy within 8s" in failed["msg"], failed["msg"]
    assert "Its new instances were removed. Live color blue keeps serving." in failed["msg"], failed["msg"]
    assert not project.containers("green"), "the failed release's containers are removed"
    assert project.snapshot() == before, "state, registrations and the live containers are as before"
    facts = assert_consistent(project, 1)
    assert summary["failed"] == 0, summary
    assert set(summary["by_color"]) == {"blue"}, summary
    report("unhealthy release", summary, True, live=facts["live"], failed_after_s=round(seconds, 1))
