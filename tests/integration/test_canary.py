# -*- coding: utf-8 -*-
"""Canary weights and the gated promotion on the real proxy (issue 13): the share set through the runtime API, kept
by a restarted and a re-created proxy, the gate promoting a good release under load with no failed request and
aborting a bad one at its first step, and the bad input that changes nothing."""

from __future__ import annotations

import json
import threading
import time

import yaml

from conftest import APP_V2, wait_for


def color_of(answer):
    status, body = answer
    assert status == 200, answer
    return body["color"]


def share(proxy, color, requests=400):
    return sum(color_of(proxy.get("/demo")) == color for _request in range(requests)) / requests


class Load:
    """GET /demo through the proxy in a loop, on ``threads`` threads, until stopped: (time, status, color) a request."""

    def __init__(self, proxy, threads=4):
        self.proxy, self.answers, self.running = proxy, [], True
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _thread in range(threads)]

    def _loop(self):
        while self.running:
            status, body = self.proxy.get("/demo")
            self.answers.append((time.time(), status, body.get("color") if isinstance(body, dict) else None))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        for thread in self.threads:
            thread.join(10)

    def failed(self, since=0.0):
        return [answer for answer in self.answers if answer[0] >= since and answer[1] != 200]


def deploy_canary(project, environment=None):
    """Blue routed and live, then green deployed beside it (with ``environment``)."""
    project.run("flow_deploy", {"health_path": "/health"})
    project.run("flow_proxy", {"service_path": ["/demo"]})
    project.set_image(APP_V2)
    if environment:
        with open(project.dir + "/docker-compose.yml") as handle:
            compose = yaml.safe_load(handle)
        compose["services"]["app"]["environment"] = environment
        project.write_compose(compose)
    project.run("flow_deploy", {"health_path": "/health"})


def recorded_canary(project):
    return project.state()["routes"].get("canary")


def test_a_weight_splits_the_requests_and_a_restarted_or_recreated_proxy_keeps_it(routed_project, proxy, docker_client):
    deploy_canary(routed_project)
    result = routed_project.run("flow_canary", {"canary_weight": 30})
    assert result["changed"] and result["outcome"] == "weighted" and result["canary"] == {"color": "green", "weight": 30}
    assert recorded_canary(routed_project) == {"color": "green", "weight": 30}
    assert 0.2 <= share(proxy, "green") <= 0.4
    assert not routed_project.run("flow_canary", {"canary_weight": 30})["changed"]

    reloads = proxy.runtime("show info")
    routed_project.run("flow_canary", {"canary_weight": 70})  # the runtime API: the worker that took 30 % goes on
    assert 0.6 <= share(proxy, "green") <= 0.8
    assert _pid(proxy.runtime("show info")) == _pid(reloads), "a weight change must not reload"

    proxy.container().restart()
    wait_for(lambda: proxy.get("/demo")[0] == 200, timeout=30, what="the restarted proxy")
    wait_for(lambda: proxy.servers_up("be_%s_green" % routed_project.service), timeout=15, what="green servers")
    assert 0.6 <= share(proxy, "green") <= 0.8, "the restarted proxy lost the split"

    proxy.cleanup()  # the container and its volume: a proxy host rebuilt
    routed_project.run("flow_proxy", {"state": "synced"})
    wait_for(lambda: proxy.servers_up("be_%s_green" % routed_project.service), timeout=15, what="green servers")
    assert 0.6 <= share(proxy, "green") <= 0.8, "the re-created proxy lost the split"

    refused = routed_project.run("flow_stop_old", expect_failure=True)
    assert "canary" in refused["msg"] and routed_project.running("green")
    refused = routed_project.run("flow_deploy", {"health_path": "/health", "force": True}, expect_failure=True)
    assert "canary" in refused["msg"]

    ended = routed_project.run("flow_canary", {"canary_weight": 0})
    assert ended["outcome"] == "aborted" and ended["changed"]
    assert share(proxy, "blue", 200) == 1.0
    release = routed_project.state()["releases"][-1]
    assert release["color"] == "green" and release["canary"]["outcome"] == "aborted"
    routed_project.run("flow_stop_old")  # weight 0: the canary takes no request, and may go
    assert not routed_project.running("green")


def _pid(show_info):
    return [line for line in show_info.splitlines() if line.startswith("Pid:")]


def test_a_weight_set_at_run_time_reaches_every_path_of_the_route(routed_project, proxy):
    """Each path of a route has a canary rule of its own. HAProxy 3.0 gave each opt@ reference of the weights file a
    map of its own, and the runtime API changed only the first: with two paths, a weight set at run time reached
    the first path's requests only, until the next reload."""
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo", "/second"]})
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_canary", {"canary_weight": 10})  # the first split reloads, with the rules
    routed_project.run("flow_canary", {"canary_weight": 90})  # at run time
    for path in ("/demo", "/second/x"):
        greens = sum(color_of(proxy.get(path)) == "green" for _request in range(100))
        assert greens >= 75, "%s: %d of 100 requests to the canary at a weight of 90" % (path, greens)


def test_a_good_release_is_promoted_step_by_step_under_load_with_no_failed_request(routed_project, proxy):
    deploy_canary(routed_project)
    with Load(proxy) as load:
        result = routed_project.run("flow_canary", {"canary_steps": [10, 50, 100], "canary_dwell": "2s"})
        time.sleep(1)
    assert result["outcome"] == "promoted" and result["live_color"] == "green" and result["previous_color"] == "blue"
    assert [step["weight"] for step in result["canary_steps"]] == [10, 50, 100]
    assert all(step["verdict"] == "pass" and step["errors_5xx"] == 0 for step in result["canary_steps"])
    # a step counts from before its weight rises, so the live color's answers until then are in it too
    assert all(step["requests"] > 0 for step in result["canary_steps"])
    assert load.failed() == [], load.failed()[:5]
    state = routed_project.state()
    assert state["live_color"] == "green" and "canary" not in state["routes"]
    assert state["releases"][-1]["canary"]["outcome"] == "promoted"
    assert {color_of(proxy.get("/demo")) for _request in range(20)} == {"green"}


def test_a_bad_release_is_aborted_at_its_first_step_and_the_live_color_serves_everything(routed_project, proxy):
    deploy_canary(routed_project, {"APP_ERROR_RATIO": "0.5"})
    with Load(proxy) as load:
        failed = routed_project.run("flow_canary", {"canary_steps": [20, 100], "canary_dwell": "20s",
                                                    "canary_min_requests": 10, "canary_on_failure": "stop"},
                                    expect_failure=True)
        time.sleep(1)
    assert failed["outcome"] == "aborted" and failed["breach"]["step"] == 1 and failed["breach"]["weight"] == 20
    assert "canary_max_error_ratio" in failed["msg"] and "live color blue serves every request" in failed["msg"]
    assert failed["canary_steps"][0]["seconds"] < 20, "the gate waited for the end of the step"
    late = load.failed(since=failed["weight_zero_at"] + 0.5)
    assert late == [], "failed requests after the weight went to 0: %s" % late[:5]
    state = routed_project.state()
    assert state["live_color"] == "blue" and state["routes"]["canary"] == {"color": "green", "weight": 0}
    assert state["releases"][-1]["canary"]["outcome"] == "failed" and state["releases"][-1]["canary"]["step"] == 1
    assert failed["stopped"] and not routed_project.running("green")
    assert {color_of(proxy.get("/demo")) for _request in range(50)} == {"blue"}


def test_bad_canary_input_fails_in_one_line_naming_the_parameter_and_changes_nothing(routed_project, proxy):
    not_routed = routed_project.run("flow_canary", {"canary_weight": 10}, expect_failure=True)
    assert "no route" in not_routed["msg"]
    deploy_canary(routed_project)
    before = routed_project.state()
    for params, named in (
        ({"canary_weight": 101}, "canary_weight"),
        ({"canary_weight": -1}, "canary_weight"),
        ({"canary_steps": [50, 25]}, "canary_steps"),
        ({"canary_steps": [0, 50]}, "canary_steps"),
        ({"canary_dwell": "0s"}, "canary_dwell"),
        ({"canary_dwell": "soon"}, "canary_dwell"),
        ({"canary_max_error_ratio": "lots"}, "canary_max_error_ratio"),
        ({"canary_max_error_ratio": 2}, "canary_max_error_ratio"),
        ({"canary_max_response_time": "fast"}, "canary_max_response_time"),
        ({"canary_min_requests": -1}, "canary_min_requests"),
        ({"canary_weight": 10, "color": "blue"}, "blue"),
    ):
        failed = routed_project.run("flow_canary", params, expect_failure=True)
        assert named in failed["msg"], (params, failed["msg"])
    assert routed_project.state() == before
    predicted = routed_project.run("flow_canary", {"canary_dwell": "10s"}, check=True)
    assert predicted["changed"] and "Would route 5, 25, 50, 100 %" in predicted["msg"]
    assert routed_project.state() == before and "canary" not in proxy.config()


def test_the_example_playbook_releases_a_canary(routed_project, proxy):
    """examples/canary.yml (the README's): deploy, preview checked with uri, canary, stop-old."""
    from test_flow_role import ROOT, run_playbook

    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    routed_project.set_image(APP_V2)
    options = dict(proxy.options, project_dir=routed_project.dir, consul_address=routed_project.consul_url,
                   publish_address="127.0.0.1", service_path=["/demo"], lock_timeout=60, health_timeout=60)
    variables = {"flow_options": options, "proxy_url": "http://127.0.0.1:%d" % proxy.http_port, "probe_path": "/demo",
                 "canary_steps": [50, 100], "canary_dwell": "1s"}
    run = run_playbook(routed_project, proxy, "-e", json.dumps(variables), playbook=ROOT + "/examples/canary.yml",
                       common=False)
    assert "TASK [Canary - the weight steps up" in run.output
    assert {color_of(proxy.get("/demo")) for _request in range(10)} == {"green"}
    state = routed_project.state()
    assert state["live_color"] == "green" and state["releases"][-1]["canary"]["outcome"] == "promoted"
    assert not routed_project.running("blue")
