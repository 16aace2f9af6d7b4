# -*- coding: utf-8 -*-
"""A deploy loses its lock in the middle (its Consul session invalidated), and a second deploy takes it.

What a Consul outage longer than the lock's TTL does to a run waiting for health checks: Consul
invalidates the session, the lock is free, another run takes it and deploys the same color. Here the
session is destroyed (``PUT /v1/session/destroy/<id>``) while the first deploy waits at
``deploy:healthy``; the second deploy takes the lock and deploys; then the first goes on. It must stop
saying it lost the lock, remove only its own new instances, never the second's, and write no state.
"""

from __future__ import annotations

import time

from conftest import APP_ONLY, APP_V2, FAST, BackgroundRun, assert_consistent, consul_get, consul_put, report, routed

PATH = "/lost"
COUNT = 2
DEPLOY = dict(FAST, health_path="/health", scale=str(COUNT))


def state_index(project):
    """ModifyIndex of the service's state key: any write changes it."""
    return consul_get("/v1/kv/dockerflow/services/%s" % project.service, project.consul_url)[0]["ModifyIndex"]


def names(containers):
    return sorted(c.name for c in containers)


def test_a_run_that_lost_its_lock_stops_and_leaves_the_new_holders_release_alone(make_project, proxy, loads):
    project = routed(make_project(APP_ONLY), proxy, PATH, DEPLOY)
    load = loads(proxy, PATH)
    project.set_image(APP_V2)

    first = BackgroundRun(project, "flow_deploy", DEPLOY, pause_at="deploy:healthy")
    first.wait_paused()
    firsts = names(project.running("green"))
    assert len(firsts) == COUNT, firsts
    session = consul_get("/v1/kv/dockerflow/locks/%s" % project.service)[0]["Session"]
    assert session, "the paused deploy holds the lock"
    consul_put("/v1/session/destroy/%s" % session)
    lost_at = time.monotonic()

    second = project.run("flow_deploy", DEPLOY)
    second_seconds = time.monotonic() - lost_at
    seconds = names(project.running("green"))
    assert second["color"] == "green" and len(seconds) == COUNT and not set(seconds) & set(firsts), (seconds, firsts)
    state, index = project.state(), state_index(project)

    resumed = time.monotonic()
    first.resume()
    failed = first.result(expect_failure=True)
    first_seconds = time.monotonic() - resumed
    message = failed["msg"]
    assert "Lost the lock of %s (Consul key dockerflow/locks/%s, session %s) before registering the new instances" % (
        project.service, project.service, session) in message, message
    # The second run has finished and released the lock by now: the message cannot name a holder.
    assert "was last confirmed at " in message and "Another run may hold it now; this run stopped." in message, message
    assert message.endswith("Its new instances were removed. Live color blue keeps serving."), message
    assert names(project.running("green")) == seconds, "the second run's instances are left alone"
    assert (project.state(), state_index(project)) == (state, index), "the run that lost its lock wrote no state"
    assert sorted(e["Meta"]["dockerflow-container"] for e in project.registrations().values()) == sorted(
        names(project.running("blue")) + seconds), "no registration of the first run's instances"

    project.run("flow_proxy", FAST)
    project.run("flow_stop_old", FAST)
    time.sleep(1)
    summary = load.stop()
    facts = assert_consistent(project, COUNT)
    assert facts["live"] == "green" and proxy.get(PATH)[1]["version"] == "2", facts
    assert summary["failed"] == 0, summary
    report("lock lost mid-deploy", summary, True, second_deploy_s=round(second_seconds, 1),
           lost_run_failed_after_s=round(first_seconds, 1), state_writes_by_lost_run=0,
           second_instances_kept="%d/%d" % (len(seconds), COUNT), live=facts["live"])
