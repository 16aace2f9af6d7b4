# -*- coding: utf-8 -*-
"""benchmarks/canary.py's figures: the steps option, requests in a window of the load's per-second counts, the
bound on a bad canary's failed requests, the timing of its 500s against weight_zero_at, and the verdicts.

Pure functions on made-up inputs; the benchmark itself runs flow_canary against the real proxy."""

from __future__ import annotations

import os
import sys
from collections import Counter

import pytest

sys.path.insert(0, os.path.join(os.path.abspath(__file__).rsplit(os.sep + "tests" + os.sep, 1)[0], "benchmarks"))

from canary import (  # noqa: E402
    answer_timing,
    exposure_start,
    failure_bound,
    gate_step_start,
    judge_bad,
    judge_good,
    parse_steps,
    requests_between,
)

T0 = 1_800_000_000.0  # the load's start (epoch)
STEPS = [5, 25, 50, 100]


def steady(per_second, seconds):
    """A load's by_second: ``per_second`` requests every second."""
    return {second: Counter(blue=per_second) for second in range(seconds)}


def failure(sent, answered, reason=500):
    return {"wall": T0 + sent, "ended": T0 + answered, "reason": reason}


def aborted(weight_zero=4.0, seconds=1.5, weight=5):
    return {"failed": True, "msg": "canary aborted at 5%: error ratio 0.2 > 0.01", "outcome": "aborted",
            "breach": {"step": 1, "weight": weight, "reason": "error ratio 0.2 > 0.01"},
            "canary_steps": [{"weight": weight, "seconds": seconds, "requests": 40, "errors_5xx": 8,
                              "error_ratio": 0.2, "verdict": "breach"}],
            "weight_zero_at": T0 + weight_zero}


def test_steps_are_whole_increasing_percentages():
    assert parse_steps("5,25,50,100") == STEPS
    assert parse_steps("100") == [100]
    for bad in ("5,5,100", "25,5", "0,50", "5,101", "5,x", ""):
        with pytest.raises(ValueError):
            parse_steps(bad)


def test_requests_between_counts_a_second_in_proportion_to_its_overlap():
    counts = {0: Counter(blue=100), 1: Counter(blue=60, failed=40), 2: Counter(green=200)}
    assert requests_between(counts, T0, T0, T0 + 3) == 400
    assert requests_between(counts, T0, T0 + 0.5, T0 + 1.25) == pytest.approx(50 + 25)
    assert requests_between(counts, T0, T0 + 2.5, T0 + 10) == pytest.approx(100)
    assert requests_between(counts, T0, T0 + 5, T0 + 6) == 0
    assert requests_between(counts, T0, T0 + 2, T0 + 1) == 0


def test_the_bound_is_step_share_times_bad_share_times_requests():
    assert failure_bound(5, 0.2, 5000) == pytest.approx(50)
    assert failure_bound(100, 1.0, 10) == pytest.approx(10)


def test_answer_timing_from_the_first_bad_answer_to_weight_zero_and_on_to_the_last():
    failures = [failure(2.0, 2.01, 502), failure(2.5, 2.52), failure(3.0, 3.03), failure(3.99, 4.05)]
    timing = answer_timing(failures, T0 + 4.0)
    assert timing["answers"] == 3, "the 502 is no answer of the bad release"
    assert timing["first_to_weight_zero_s"] == pytest.approx(1.48)
    assert timing["weight_zero_to_last_s"] == pytest.approx(0.05)
    assert timing["sent_after_weight_zero"] == 0
    assert timing["first_sent"] == T0 + 2.5
    assert answer_timing([failure(4.2, 4.21)], T0 + 4.0)["sent_after_weight_zero"] == 1
    assert answer_timing([], T0 + 4.0)["answers"] == 0
    assert answer_timing(failures, None)["first_to_weight_zero_s"] is None


def test_the_canary_starts_at_its_step_start_or_its_first_bad_request_whichever_came_first():
    assert gate_step_start(aborted(weight_zero=4.0, seconds=1.5)) == pytest.approx(T0 + 2.5)
    assert gate_step_start({"outcome": "aborted", "weight_zero_at": T0 + 4}) is None
    assert exposure_start(aborted(weight_zero=4.0, seconds=1.5), T0) == (pytest.approx(T0 + 2.5), "the module's step start")
    # The gate counts from one runtime call after the weight took effect: a 500 sent before its start is earlier.
    assert exposure_start(aborted(weight_zero=4.0, seconds=1.5), T0, T0 + 1.2) == (T0 + 1.2, "the first 500 the load sent")
    assert exposure_start(aborted(weight_zero=4.0, seconds=1.5), T0, T0 + 3.0)[0] == pytest.approx(T0 + 2.5)
    assert exposure_start({"outcome": "aborted", "weight_zero_at": T0 + 4}, T0 + 1) == (T0 + 1, "the task's start")
    assert exposure_start({}, T0 + 1, T0 + 2) == (T0 + 2, "the first 500 the load sent")


def test_a_first_step_abort_within_the_bound_is_no_problem():
    # 1,000 requests a second, a 5 s dwell from 2.5 s: 5,000 requests, bound 5% x 0.2 x 5,000 = 50.
    failures = [failure(2.6 + i * 0.1, 2.61 + i * 0.1) for i in range(15)]
    figures, problems = judge_bad(aborted(), STEPS, 0.2, 5.0, failures, steady(1000, 10), T0, T0 + 1, canary_ok=60)
    assert problems == []
    assert (figures["requests_in_dwell"], figures["bound_dwell"]) == (5000, 50.0)
    assert (figures["requests_to_abort"], figures["bound_to_abort"]) == (1500, 15.0)
    assert (figures["failed"], figures["failed_500"], figures["failed_other"]) == (15, 15, 0)
    assert figures["exposure_start_from"] == "the module's step start"
    assert figures["answering_before_the_gate_s"] == 0
    assert (figures["canary_answers_seen_by_load"], figures["canary_requests_counted_by_gate"]) == (75, 40)


def test_500s_before_the_gates_step_move_the_start_earlier():
    # As seen at load 20: the first 500 was sent 1.35 s before the step the module reports (0.62 s before weight 0).
    result = aborted(weight_zero=4.0, seconds=0.62)
    failures = [failure(2.03 + i * 0.1, 2.04 + i * 0.1) for i in range(20)]
    figures, problems = judge_bad(result, STEPS, 0.2, 5.0, failures, steady(1000, 12), T0, T0 + 1, canary_ok=80)
    assert figures["exposure_start"] == pytest.approx(T0 + 2.03)
    assert figures["answering_before_the_gate_s"] == pytest.approx(1.35)
    assert (figures["requests_to_abort"], figures["bound_to_abort"]) == (1970, 19.7)
    assert figures["bound_dwell"] == 50.0 and problems == []


def test_more_failures_than_the_bound_is_a_problem_and_connection_errors_count():
    failures = [failure(2.6, 2.61)] * 45 + [failure(3.0, 3.0, "ConnectionResetError")] * 6
    figures, problems = judge_bad(aborted(), STEPS, 0.2, 5.0, failures, steady(1000, 10), T0, T0 + 1)
    assert figures["failed_other"] == 6
    assert problems == ["51 failed requests, more than the bound 50.0 (5% x 0.2 x 5000 requests in the 5s dwell)"]


def test_an_abort_at_a_later_step_or_a_promotion_is_a_problem():
    later = aborted(weight=25)
    later["canary_steps"].insert(0, {"weight": 5, "seconds": 5.0, "verdict": "pass"})
    later["breach"]["step"] = 2
    _figures, problems = judge_bad(later, STEPS, 0.2, 5.0, [], steady(1000, 20), T0, T0 + 1)
    assert problems == ["the bad release was aborted at weight 25 (step 2), not at the first step (5%)"]
    promoted = {"outcome": "promoted", "color": "blue", "canary_steps": [{"weight": w, "seconds": 5.0} for w in STEPS]}
    _figures, problems = judge_bad(promoted, STEPS, 0.2, 5.0, [], steady(1000, 30), T0, T0 + 1)
    assert problems == ["the bad release was promoted"]
    broken = {"failed": True, "msg": "no route for dfbench-app"}
    figures, problems = judge_bad(broken, STEPS, 0.2, 5.0, [], steady(1000, 10), T0, T0 + 1)
    assert problems == ["the bad release was not aborted (flow_canary: no route for dfbench-app)"]
    assert figures["exposure_start_from"] == "the task's start" and figures["requests_to_abort"] is None
    assert figures["answering_before_the_gate_s"] is None


def test_the_good_release_must_be_promoted_served_and_fail_nothing():
    promoted = {"outcome": "promoted", "color": "green", "live_color": "green", "previous_color": "blue"}
    assert judge_good(promoted, 0, ["green"]) == []
    assert judge_good(promoted, 2, ["green"]) == ["2 failed request(s) while the good release was promoted"]
    assert judge_good(promoted, 0, ["blue", "green"]) == ["the proxy serves blue/green after promoting green"]
    assert judge_good({"failed": True, "msg": "breach at 25%"}, 0, ["blue"]) == [
        "the good release was not promoted (flow_canary: breach at 25%)"]
