# -*- coding: utf-8 -*-
"""The canary step's decisions (canary_flow): which color may be a canary, the order of records and runtime
commands at each step, the abort at the first breach, and the promotion through the switch. The proxy, Docker and
Consul are the in-memory stand-ins of test_proxy_flow.py; the real proxy is tests/integration/test_canary.py."""

from __future__ import annotations

import pytest
from test_proxy_flow import FakeProxyNode, Proxied

from ansible_collections.dockerflow.flow.plugins.module_utils import canary_flow
from ansible_collections.dockerflow.flow.plugins.module_utils.canary_flow import CanaryFlow
from ansible_collections.dockerflow.flow.plugins.module_utils.canary_gate import Schedule
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.steps import instances as step_instances

HEADER = "# pxname,svname,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,\n"


class CanaryNode(FakeProxyNode):
    """The fake proxy, with the runtime API's map commands and counters: every ``show stat`` adds ``per_read``
    answers (2xx, 5xx) to the canary's backend and 10 good ones to the live one."""

    def __init__(self, consul):
        super().__init__(consul)
        self.commands, self.weights, self.counts, self.per_read = [], {}, {}, {}
        self.taken = []  # (weight the worker took, the weight Consul recorded at that moment)

    def runtime(self, command):
        self.commands.append(command)
        answer = HEADER
        for part in command.split(";"):
            words = part.split()
            if words[:2] == ["add", "map"]:
                self.weights[words[3]] = int(words[4])
                recorded = (self.consul.document(words[3]).get("routes") or {}).get("canary") or {}
                self.taken.append((int(words[4]), recorded.get("weight")))
            if words[:2] == ["show", "stat"]:
                good, bad = self.counts.setdefault(words[2], (0, 0))
                more_good, more_bad = self.per_read.get(words[2], (10, 0))
                self.counts[words[2]] = (good + more_good, bad + more_bad)
                answer += "%s,BACKEND,0,%d,0,0,%d,0,5,\n" % (words[2], good + more_good, bad + more_bad)
        return answer


@pytest.fixture
def canaried(tmp_path, monkeypatch):
    monkeypatch.setattr(step_instances, "DNS_QUIESCE_SECONDS", 0)
    monkeypatch.setattr(canary_flow, "POLL_SECONDS", 0.01)
    proxied = Proxied(tmp_path)
    proxied.node = CanaryNode(proxied.consul)
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    return proxied


def canary(proxied, weight=None, check_mode=False, **schedule):
    flow = proxied.flow(check_mode=check_mode)
    values = dict(steps=(5, 50, 100), dwell=0.05, max_error_ratio=0.01, min_requests=20)
    values.update(schedule)
    return CanaryFlow(flow, proxied.node).run(weight, Schedule(**values))


def test_a_weight_is_recorded_then_taken_by_the_running_worker_and_0_ends_it(canaried):
    result = canary(canaried, weight=30)
    assert result["changed"] and result["outcome"] == "weighted" and result["canary"] == {"color": "green", "weight": 30}
    assert canaried.document()["routes"]["canary"] == {"color": "green", "weight": 30}
    assert canaried.node.weights == {"books-app": 30} and canaried.node.files == {"canary-weights.map": "books-app 30\n"}
    assert "r0_canary" in canaried.node.running, "the first split adds the rule that reads the weight"
    activations = len(canaried.node.activated)
    assert not canary(canaried, weight=30)["changed"]
    canary(canaried, weight=60)
    assert canaried.node.weights == {"books-app": 60} and len(canaried.node.activated) == activations, "no reload"
    ended = canary(canaried, weight=0)
    assert ended["outcome"] == "aborted" and canaried.node.weights == {"books-app": 0}
    assert canaried.node.taken[-1] == (0, 60), "a falling weight is taken by the proxy before it is recorded"
    assert canaried.document()["releases"][-1]["canary"]["outcome"] == "aborted"


def test_check_mode_changes_nothing(canaried):
    predicted = canary(canaried, check_mode=True)
    assert predicted["changed"] and predicted["msg"].startswith("Would route 5, 50, 100 % of books-app's requests to green")
    assert "canary" not in canaried.document()["routes"] and canaried.node.commands == []


def test_a_good_canary_passes_every_step_and_is_promoted_by_the_switch(canaried):
    result = canary(canaried)
    assert result["outcome"] == "promoted" and result["live_color"] == "green" and result["previous_color"] == "blue"
    assert [(step["weight"], step["verdict"]) for step in result["canary_steps"]] == [(5, "pass"), (50, "pass"), (100, "pass")]
    assert canaried.node.taken == [(5, 5), (50, 50), (100, 100)], "a rising weight is recorded before the proxy takes it"
    document = canaried.document()
    assert document["live_color"] == "green" and "canary" not in document["routes"]
    assert "r0_canary" not in canaried.node.running
    assert document["releases"][-1]["canary"]["outcome"] == "promoted"


def test_a_bad_canary_goes_to_weight_0_before_anything_is_recorded_and_the_task_fails(canaried):
    canaried.node.per_read["be_books-app_green"] = (8, 2)  # 20 % 5xx
    with pytest.raises(FlowError) as failed:
        canary(canaried, min_requests=5)
    error = failed.value
    assert error.msg.startswith("Canary green of books-app failed step 1 (5 %): 5xx ratio 0.200")
    assert error.msg.endswith("Its weight is back to 0; live color blue serves every request.")
    assert error.details["outcome"] == "aborted" and error.details["breach"]["step"] == 1
    assert canaried.node.taken[:2] == [(5, 5), (0, 5)], "the proxy took 0 before it was recorded, and no step 2"
    document = canaried.document()
    assert document["live_color"] == "blue" and document["routes"]["canary"] == {"color": "green", "weight": 0}
    assert document["releases"][-1]["canary"]["outcome"] == "failed"
    assert canaried.node.weights == {"books-app": 0}


@pytest.mark.parametrize("setup, color, message", [
    ("unrouted", None, "has no route: route it with flow_proxy before a canary"),
    ("live", "blue", "blue is the color the proxy routes books-app to"),
    ("routed", "red", "has no running red release"),
])
def test_what_cannot_be_a_canary_is_refused_before_anything_changes(tmp_path, setup, color, message):
    proxied = Proxied(tmp_path)
    proxied.node = CanaryNode(proxied.consul)
    proxied.deploy()
    if setup != "unrouted":
        proxied.proxy(service_path=["/api/books"])
    before = proxied.document()
    flow = proxied.flow()
    with pytest.raises(FlowError, match=message):
        CanaryFlow(flow, proxied.node).run(10, Schedule((5,), 1.0, 0.01), color=color)
    assert proxied.document() == before and proxied.node.commands == []


def test_the_gate_counts_from_before_the_weight_rises(canaried):
    """Answers the canary gives between the weight and the step's first read count (a benchmark saw the gate miss
    the first 1-2 s of a bad canary when it counted from after the weight)."""
    canaried.node.per_read["be_books-app_green"] = (0, 0)
    original = canaried.node.runtime

    def bad_answers_as_soon_as_it_takes_requests(command):
        if command.startswith("del map") and not command.endswith(" 0"):
            good, bad = canaried.node.counts.get("be_books-app_green", (0, 0))
            canaried.node.counts["be_books-app_green"] = (good + 30, bad + 30)
        return original(command)

    canaried.node.runtime = bad_answers_as_soon_as_it_takes_requests
    with pytest.raises(FlowError, match=r"failed step 1 \(5 %\): 5xx ratio 0.500 \(30 of 60 requests\)"):
        canary(canaried)


def test_a_failure_that_is_no_breach_puts_the_weight_back_to_0(canaried):
    original = canaried.node.runtime
    reads = []

    def stat_fails_after_a_while(command):
        if "show stat" in command:
            reads.append(command)
            if len(reads) > 6:
                raise FlowError("HAProxy's runtime API in dockerflow-proxy did not answer 'show stat': timeout")
        return original(command)

    canaried.node.runtime = stat_fails_after_a_while
    with pytest.raises(FlowError) as failed:
        canary(canaried, dwell=1.0)
    assert failed.value.msg.startswith("The canary of books-app could not go on: HAProxy's runtime API")
    assert failed.value.msg.endswith("Its weight is back to 0.") and failed.value.details["outcome"] == "aborted"
    assert canaried.node.weights == {"books-app": 0}
    assert canaried.document()["routes"]["canary"] == {"color": "green", "weight": 0}


def test_an_answer_without_its_header_is_asked_again(canaried):
    original, empty = canaried.node.runtime, [2]

    def sometimes_empty(command):
        if "show stat" in command and empty[0]:
            empty[0] -= 1
            return ""
        return original(command)

    canaried.node.runtime = sometimes_empty
    assert canary(canaried)["outcome"] == "promoted"
