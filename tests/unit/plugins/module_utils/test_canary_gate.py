# -*- coding: utf-8 -*-
"""The gate of a canary promotion: the schedule's input, a step's figures from HAProxy's counters, and the verdict."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.canary_gate import (
    Counters,
    Schedule,
    breach,
    duration_seconds,
    ratio,
    weights,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

HEADER = "# pxname,svname,qcur,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,\n"


def stat(*rows):
    """A ``show stat`` answer: (backend, svname, 2xx, 5xx, rtime) a row."""
    return HEADER + "".join("%s,%s,0,0,%d,0,0,%d,0,%d,\n" % row for row in rows)


def schedule(**changes):
    values = dict(steps=(5, 100), dwell=10.0, max_error_ratio=0.01, min_requests=20)
    values.update(changes)
    return Schedule(**values)


@pytest.mark.parametrize("value, seconds", [("30s", 30), ("500ms", 0.5), ("2m", 120), (5, 5), ("1.5", 1.5), (" 3s ", 3)])
def test_durations(value, seconds):
    assert duration_seconds(value, "canary_dwell") == seconds


@pytest.mark.parametrize("value", ["0", "0s", "-1s", "soon", "", "1h", "inf", "nan", True, None, "1e3s"])
def test_a_duration_that_is_not_one_names_the_parameter(value):
    with pytest.raises(FlowError, match=r"^canary_dwell=.* is not valid: use a duration above 0"):
        duration_seconds(value, "canary_dwell")


@pytest.mark.parametrize("value, expected", [("0.01", 0.01), (0.05, 0.05), ("5%", 0.05), ("0", 0), (1, 1), ("100%", 1)])
def test_ratios(value, expected):
    assert ratio(value, "canary_max_error_ratio") == pytest.approx(expected)


@pytest.mark.parametrize("value", ["1.5", "101%", "-0.1", "lots", "", "%", "nan", True])
def test_a_ratio_that_is_not_one_names_the_parameter(value):
    with pytest.raises(FlowError, match=r"^canary_max_error_ratio=.* is not valid: use a ratio from 0 to 1"):
        ratio(value, "canary_max_error_ratio")


def test_steps_increase_from_1_to_100():
    assert weights(["5", "25", "50", "100"]) == (5, 25, 50, 100)
    assert weights([100]) == (100,)
    for bad in ([50, 25], [0, 50], [5, 5], [], ["x"], [5, 101], None):
        with pytest.raises(FlowError, match=r"^canary_steps=.* is not valid: use increasing whole percentages"):
            weights(bad)


def test_the_schedule_from_the_module_parameters():
    params = {"canary_steps": ["10", "100"], "canary_dwell": "2s", "canary_max_error_ratio": "2%",
              "canary_max_response_time": "250ms", "canary_against_live": True, "canary_min_requests": 5,
              "canary_on_failure": "stop"}
    assert Schedule.from_params(params) == Schedule((10, 100), 2.0, 0.02, 250.0, True, 5, "stop")
    for name, bad in (("canary_min_requests", -1), ("canary_on_failure", "drop"), ("canary_max_response_time", "0")):
        with pytest.raises(FlowError, match="^%s=" % name):
            Schedule.from_params(dict(params, **{name: bad}))


def test_counters_are_the_backend_row_and_a_step_is_their_difference():
    answer = stat(("be_a_green", "g1", 90, 10, 7), ("be_a_green", "BACKEND", 180, 20, 12), ("be_a_blue", "BACKEND", 5, 0, 3))
    green = Counters.of(answer, "be_a_green")
    assert green == Counters(answers=200, errors=20, response_ms=12)
    assert Counters.of(answer, "be_a_red") == Counters()
    step = green.since(Counters(answers=100, errors=18, response_ms=40))
    assert step == Counters(answers=100, errors=2, response_ms=12) and step.error_ratio == 0.02
    assert step.as_dict() == {"requests": 100, "errors_5xx": 2, "error_ratio": 0.02, "response_time_ms": 12}


def test_a_step_counted_across_a_reload_counts_the_new_workers_answers():
    """A reload (the first split of a route adds its rule) starts a worker whose counters start at 0: the benchmark
    saw the live color at -22,053 requests when the step's start was read in the worker before."""
    before = Counters.of("Name: HAProxy\nPid: 41\n" + stat(("be_a_blue", "BACKEND", 22053, 0, 8)), "be_a_blue")
    after = Counters.of("Pid: 57\n" + stat(("be_a_blue", "BACKEND", 60, 5, 9)), "be_a_blue")
    assert before.worker == "41" and after.worker == "57"
    assert after.since(before) == Counters(answers=65, errors=5, response_ms=9, worker="57")
    later = Counters.of("Pid: 57\n" + stat(("be_a_blue", "BACKEND", 100, 5, 9)), "be_a_blue")
    assert later.since(after).answers == 40


def test_the_verdict():
    bad, live = Counters(100, 20, 10), Counters(1000, 0, 10)
    assert "5xx ratio 0.200 (20 of 100 requests) is above canary_max_error_ratio=0.01" in breach(bad, live, schedule(), False)
    assert breach(Counters(5, 5, 10), live, schedule(), False) is None, "too few answers to stop a step early"
    assert breach(Counters(5, 5, 10), live, schedule(), True), "at the step's end what it answered counts"
    assert breach(Counters(0, 0, 0), live, schedule(), True) is None
    assert breach(Counters(100, 1, 10), live, schedule(), True) is None, "1 % is not above 1 %"
    slow = schedule(max_response_ms=200.0)
    slow_answer = breach(Counters(50, 0, 350), live, slow, True)
    assert "average response time 350 ms is above canary_max_response_time=200ms" in slow_answer
    against = schedule(against_live=True, max_error_ratio=0.05, max_response_ms=100.0)
    assert breach(Counters(100, 20, 10), Counters(100, 18, 10), against, True) is None, "as bad as the live color"
    assert "(the live color's: 0.000, 10 ms)" in breach(Counters(100, 20, 10), Counters(100, 0, 10), against, True)
    assert breach(Counters(100, 0, 250), Counters(100, 0, 200), against, True) is None
    assert "response time 350 ms" in breach(Counters(100, 0, 350), Counters(100, 0, 200), against, True)
