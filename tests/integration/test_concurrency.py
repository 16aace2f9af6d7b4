# -*- coding: utf-8 -*-
"""Two flows on one service never interleave: the Consul session lock serializes them."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import APP_V2, consul_put


def test_two_concurrent_deploys_serialize(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    flow_project.set_image(APP_V2)
    processes, process_env = [], {}
    for _deploy in range(2):
        command, env = flow_project.playbook("flow_deploy", {"force": True, "lock_timeout": 120})
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process_env[process.pid] = env["DOCKERFLOW_RESULT_PATH"]
        processes.append(process)
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        completed.env_result_path = process_env[process.pid]
        results.append(flow_project.parse(completed))
    releases = sorted(result["release"] for result in results)
    assert releases == [2, 3], releases
    assert any(any("waiting for the lock" in step for step in r["steps"]) for r in results), [r["steps"] for r in results]
    state = flow_project.state()
    assert [r["release"] for r in state["releases"]] == [1, 2, 3], "no state update was lost"
    assert state["live_color"] == "blue" and state["deployed_color"] == "green"
    green = flow_project.containers("green")
    assert [c.labels["dockerflow.release"] for c in green] == ["3"]
    assert len(flow_project.running("blue")) == 1


def test_lock_held_elsewhere_fails_naming_the_holder(flow_project):
    flow_project.run("flow_deploy")
    session = json.loads(consul_put("/v1/session/create", json.dumps({"TTL": "30s", "LockDelay": "1s"}).encode()))["ID"]
    holder = json.dumps({"holder": "alice@ci-runner-7", "operation": "deploy", "pid": 4242, "since": "now"}).encode()
    assert consul_put("/v1/kv/dockerflow/locks/%s?acquire=%s" % (flow_project.service, session), holder).strip() == b"true"
    try:
        before = flow_project.snapshot()
        started = time.monotonic()
        failed = flow_project.run("flow_scale", {"scale": "+1", "lock_timeout": 3}, expect_failure=True)
        assert time.monotonic() - started >= 3
        assert "locked by alice@ci-runner-7" in failed["msg"] and "pid 4242" in failed["msg"], failed["msg"]
        assert flow_project.snapshot() == before
    finally:
        consul_put("/v1/session/destroy/%s" % session)
    # once released, the same call goes through
    assert flow_project.run("flow_scale", {"scale": "+1"})["instances_count"] == 2


def test_a_lock_its_run_never_released_is_reported_by_the_run_that_takes_it(flow_project):
    """A killed run cannot release its lock: its session expires (Consul's TTL) and the holder
    record stays behind. Destroying the session is what that expiry does, without the wait."""
    flow_project.run("flow_deploy")
    session = json.loads(consul_put("/v1/session/create", json.dumps({"TTL": "10s", "LockDelay": "1s"}).encode()))["ID"]
    holder = json.dumps({"holder": "bob@ci-runner-9", "operation": "deploy", "pid": 777, "since": "earlier"}).encode()
    assert consul_put("/v1/kv/dockerflow/locks/%s?acquire=%s" % (flow_project.service, session), holder).strip() == b"true"
    consul_put("/v1/session/destroy/%s" % session)
    scaled = flow_project.run("flow_scale", {"scale": "+1", "lock_ttl": 10})
    assert scaled["instances_count"] == 2
    reports = [w for w in scaled.get("warnings", []) if "left by bob@ci-runner-9 (deploy, pid 777" in w]
    assert reports and "without releasing it" in reports[0], scaled.get("warnings")
    # a run that released its lock leaves nothing to report
    again = flow_project.run("flow_scale", {"scale": "-1"})
    assert not [w for w in again.get("warnings", []) if "without releasing" in w], again.get("warnings")
