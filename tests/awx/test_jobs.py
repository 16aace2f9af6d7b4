# -*- coding: utf-8 -*-
"""setup.yml, flow.yml and rollback.yml as AWX job templates run them (conftest.py): a synced project, a
private data directory a job, ansible-runner. Each job is judged on runner's status and return code and on
its job events, task by task, then on what the engine, Consul and the proxy show."""

from __future__ import annotations

import os
import signal
import time

from conftest import APP_V2, alive, flow_vars, running, served, wait_for

# Task names of the collection, as the job events carry them.
CONSUL_STARTED = "Start the Consul container"
CONSUL_LEADER = "Ask the agent for the leader"
PROXY_STARTED = "Run the proxy with every route recorded in Consul"
DEPLOY = "Deploy: run the target as the next color beside the live one, wait until healthy, register it"
SWITCH = "Proxy: route the service to the newest release in the proxy and make it live"
STOP_OLD = "Stop-old: stop the releases that are not live (kept for a rollback)"
SCALE = "Scale: scale the live color (absolute or relative)"
ROLLBACK = "Rollback: start the previous release again and wait until it is healthy"
ROLLBACK_SWITCH = "Rollback: switch the proxy to the previous release"
ROLLBACK_STOP = "Rollback: stop the release that was live"
# The flow module's test-only pause (a pause point, pause_points.py; tests/faults): the job is cancelled while it waits there.
PAUSE_AT = "deploy:started"


def job_vars(platform, project, **extra):
    return flow_vars(project, platform.consul_url, platform.consul_dns, platform.proxy, **extra)


def served_by(platform, project):
    return served(platform.proxy["proxy_http_port"], project.path)


def test_setup_job_brings_up_consul_and_the_proxy(platform):
    job = platform.setup_job
    job.assert_successful()
    assert job.stats["failures"] == {} and job.stats["ok"]["localhost"] > 0, job.stats
    assert job.ok(CONSUL_STARTED)["changed"] is True
    assert job.ok(CONSUL_LEADER)["json"] == "127.0.0.1:%d" % platform.consul_server_port
    assert job.ok(PROXY_STARTED)["changed"] is True
    collections = os.path.join(job.private_data_dir, "requirements_collections", "ansible_collections")
    roles = {path for path in job.task_paths() if "/roles/" in path}
    assert roles and all(path.startswith(collections) for path in roles), \
        "the roles run from the collection the project sync installed: %s" % sorted(roles)
    assert [event for event, _res in job.outcomes("Run Registrator")] == ["runner_on_skipped"]


def test_flow_and_rollback_jobs_walk_a_release_through(platform, awx_service):
    project = awx_service
    first = platform.jobs.run("flow", job_vars(platform, project, flow="deploy,proxy"))
    first.assert_successful()
    deployed = first.ok(DEPLOY)
    assert deployed["changed"] and deployed["color"] == "blue" and deployed["release"] == 1, deployed
    assert first.ok(SWITCH)["live_color"] == "blue"
    assert first.outcomes(STOP_OLD) == [], "stop-old is not a step of this job"
    assert served_by(platform, project) == ("blue", "1")

    # The next release through a user's playbook (release.yml) whose job leaves release_scale out: the role
    # takes flow_scale as not set (the scale of the live release), as the AWX user expected.
    project.set_image(APP_V2)
    release_vars = job_vars(platform, project, release_steps=["deploy", "proxy", "stop-old"],
                            release_dir=project.dir, release_consul=platform.consul_url)
    del release_vars["project_dir"], release_vars["consul_address"]
    second = platform.jobs.run("release", release_vars)
    second.assert_successful()
    assert second.ok(DEPLOY)["color"] == "green"
    assert second.ok(SWITCH)["live_color"] == "green"
    assert second.ok(STOP_OLD)["changed"] is True
    assert served_by(platform, project) == ("green", "2") and running(project) == {"green": 1}

    rolled = platform.jobs.run("rollback", job_vars(platform, project))
    rolled.assert_successful()
    assert rolled.ok(ROLLBACK)["color"] == "blue"
    assert rolled.ok(ROLLBACK_SWITCH)["live_color"] == "blue"
    assert rolled.ok(ROLLBACK_STOP)["changed"] is True
    assert served_by(platform, project) == ("blue", "1") and running(project) == {"blue": 1}
    assert project.state()["live_color"] == "blue"


def test_a_failed_step_fails_the_job_on_that_task(platform, awx_service):
    """scale on a service never deployed: the scale task fails, the role's rescue fails the job with the step's
    message, the proxy step never starts; runner says failed, return code 2."""
    project = awx_service
    job = platform.jobs.run("flow", job_vars(platform, project, flow="scale,proxy", scale="+1"))
    assert (job.status, job.rc) == ("failed", 2), job.tail()
    scale = job.failed(SCALE)
    assert scale["msg"] and "\n" not in scale["msg"] and "Traceback" not in job.stdout, scale
    message = job.failed("Fail with the message of the step: scale")["msg"]
    assert message.startswith("Flow step scale (1 of 2) failed: ") and message.endswith("Not run: proxy."), message
    assert job.failed_tasks() == [SCALE, "Fail with the message of the step: scale"]
    assert job.outcomes(SWITCH) == [] and job.stats["failures"] == {"localhost": 1}, job.stats
    assert project.containers() == [] and project.state() is None


def test_a_job_cancelled_during_a_deploy_leaves_the_live_release_and_the_next_job_converges(platform, awx_service):
    project = awx_service
    platform.jobs.run("flow", job_vars(platform, project, flow="deploy,proxy")).assert_successful()
    assert served_by(platform, project) == ("blue", "1")

    # Cancelled as AWX cancels a job: runner's cancel_callback says so, runner kills the job's process group.
    project.set_image(APP_V2)
    pause_file = os.path.join(project.dir, "paused")
    cancelled = platform.jobs.run(
        "flow", job_vars(platform, project, flow="deploy,proxy,stop-old"),
        envvars={"DOCKERFLOW_TEST_PAUSE_AT": PAUSE_AT, "DOCKERFLOW_TEST_PAUSE_FILE": pause_file},
        cancel_callback=lambda: os.path.exists(pause_file))
    assert (cancelled.status, cancelled.rc) == ("canceled", 254), cancelled.tail()
    started = [event["event_data"]["task"] for event in cancelled.events if event["event"] == "runner_on_start"]
    assert started[-1] == DEPLOY and cancelled.outcomes(DEPLOY) == [], "cancelled while the deploy ran"
    with open(pause_file) as handle:
        module_pid = int(handle.read())
    # Runner kills ansible-playbook's process group; ansible-core 2.19's workers each lead a session of their own
    # (WorkerProcess._detach: setsid), so the worker and its module outlive a job cancelled without a container.
    # AWX runs every job in an execution environment, and cancelling kills the container, which ends them too:
    # here the test kills the worker's process group as that does (test_execution_environment.py cancels a job
    # in the container itself).
    outlived = alive(module_pid)
    if outlived:
        os.killpg(os.getpgid(module_pid), signal.SIGKILL)
    wait_for(lambda: not alive(module_pid), timeout=15, what="the deploy's module process to end")
    os.remove(pause_file)
    assert project.running("green"), "the cancelled deploy had started its containers"
    assert served_by(platform, project) == ("blue", "1"), "the live release serves on"
    assert project.state()["live_color"] == "blue"

    began = time.monotonic()
    rerun = platform.jobs.run("flow", job_vars(platform, project, flow="deploy,proxy,stop-old"))
    rerun_seconds = time.monotonic() - began
    rerun.assert_successful()
    deployed = rerun.ok(DEPLOY)
    assert [w for w in deployed.get("warnings", []) if "without releasing it" in w], \
        "the next job reports the lock the cancelled one left: %s" % deployed.get("warnings")
    assert rerun.ok(SWITCH)["live_color"] == deployed["color"]
    assert served_by(platform, project) == (deployed["color"], "2")
    assert running(project) == {deployed["color"]: 1}
    assert project.state()["live_color"] == deployed["color"]
    print("\nAWX cancelled deploy: the module outlived runner's cancel: %s; the next job converged in %.1fs"
          % (outlived, rerun_seconds))
