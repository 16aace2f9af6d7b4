# -*- coding: utf-8 -*-
"""Consul stopped in the middle of a deploy, and unreachable when the next one starts; and Consul
answering for a few seconds that the live release has no instance, as it does after a restart.

The first test runs a Consul of its own (the harness's agent serves other tests) and a proxy that
resolves instances in its DNS; the Consul stays down for longer than HAProxy's default hold
on failed DNS answers (30 s), the time after which a proxy would drop the servers it knows.
"""

from __future__ import annotations

import time

from conftest import APP_ONLY, APP_V2, FAST, BackgroundRun, assert_consistent, consul_put, report, routed, wait_for

PATH = "/outage"
OUTAGE_SECONDS = 36  # past HAProxy's 30 s default hold on failed DNS answers
DEPLOY = dict(FAST, health_path="/health")
# Measured on a loaded machine: a restarted Consul answered NXDOMAIN for a service with two passing instances
# for up to 3 s once its DNS was up (a stale read of a catalog it had not replayed yet); the proxy must outlast it.
NO_INSTANCE_SECONDS = 5


def test_consul_outage_keeps_the_live_release_serving_and_a_rerun_converges(
        own_consul, own_consul_proxy, make_project, loads):
    # (own_consul first: fixtures are torn down in reverse, so the project is cleaned while its Consul still runs)
    project = make_project(APP_ONLY, consul_url=own_consul.url)
    project.proxy = own_consul_proxy
    project.run("flow_deploy", DEPLOY)
    project.run("flow_proxy", dict(FAST, service_path=[PATH]))
    project.run("flow_stop_old", FAST)
    load = loads(own_consul_proxy, PATH)
    before = project.snapshot()

    # Stopped in the middle: the new instances are registered, the state is not written yet.
    project.set_image(APP_V2)
    paused = BackgroundRun(project, "flow_deploy", DEPLOY, pause_at="deploy:registered")
    paused.wait_paused()
    own_consul.stop()
    stopped_at = time.time()
    paused.resume()
    failed = paused.result(expect_failure=True)
    assert "Consul at %s" % own_consul.url in failed["msg"], failed["msg"]
    assert "Live color blue keeps serving" in failed["msg"], failed["msg"]
    assert not project.containers("green"), "the new instances are removed"

    # Unreachable at the start.
    unreachable = project.run("flow_deploy", DEPLOY, expect_failure=True)
    assert "Cannot reach Consul at %s (consul_address)" % own_consul.url in unreachable["msg"], unreachable["msg"]
    assert not project.containers("green")

    time.sleep(max(0, stopped_at + OUTAGE_SECONDS - time.time()))
    failed_during_outage = load.failures_between(stopped_at, time.time())
    own_consul.start()
    outage = time.time() - stopped_at
    assert project.state() == before["state"], "the state is exactly as before the interrupted deploy (CAS, no half write)"

    started = time.monotonic()
    rerun = [project.run("flow_deploy", DEPLOY), project.run("flow_proxy", FAST), project.run("flow_stop_old", FAST)]
    rerun_seconds = time.monotonic() - started
    summary = load.stop()

    facts = assert_consistent(project, 1)
    assert facts["live"] == "green" and own_consul_proxy.get(PATH)[1]["version"] == "2", facts
    assert any("without releasing it" in w for w in rerun[0].get("warnings", [])), rerun[0].get("warnings")
    assert failed_during_outage == 0, "requests failed while Consul was down: %s" % summary["first_failures"]
    assert summary["failed"] == 0, "requests failed during the rerun: %s" % summary["first_failures"]
    report("consul stopped mid-deploy + down", summary, True, outage_s=round(outage, 1),
           failed_during_outage=failed_during_outage, rerun_s=round(rerun_seconds, 1), live=facts["live"])


def test_consul_briefly_saying_the_live_release_has_no_instance_keeps_it_serving(make_project, proxy, loads):
    # Consul's maintenance mode makes its DNS answer NXDOMAIN for the service while the instances run and
    # pass the proxy's own checks, like the restarted Consul above did (seen there as 30 failed requests).
    project = routed(make_project(APP_ONLY), proxy, "/no-instance", dict(DEPLOY, scale="2"))
    backend = "be_%s_blue" % project.service
    wait_for(lambda: proxy.servers_up(backend) == 2, timeout=20, what="2 servers up in %s" % backend)
    load = loads(proxy, "/no-instance")
    instances = sorted(project.registrations())
    assert len(instances) == 2, instances

    started = time.time()
    for service_id in instances:
        consul_put("/v1/agent/service/maintenance/%s?enable=true&reason=dftest" % service_id)
    time.sleep(NO_INSTANCE_SECONDS)
    for service_id in instances:
        consul_put("/v1/agent/service/maintenance/%s?enable=false" % service_id)
    ended = time.time()
    time.sleep(2)
    summary = load.stop()

    assert summary["failed"] == 0, "requests failed while Consul said no instance: %s" % summary["first_failures"]
    assert proxy.servers_up(backend) == 2, proxy.runtime("show servers state %s" % backend)
    facts = assert_consistent(project, 2)
    report("consul says no instance for %ds" % NO_INSTANCE_SECONDS, summary, True,
           failed_in_window=load.failures_between(started, ended), live=facts["live"])
