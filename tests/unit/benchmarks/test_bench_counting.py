# -*- coding: utf-8 -*-
"""The benchmarks' counting: the POST ledger (lost / duplicated / failed but received), the
ledger files the recording app writes, and proxy_overhead's rates of 2xx answers only.

Pure functions on made-up inputs: the benchmarks themselves run against the real engine,
Consul and HAProxy (benchmarks/README.md has their figures).
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import pytest

sys.path.insert(0, os.path.join(os.path.abspath(__file__).rsplit(os.sep + "tests" + os.sep, 1)[0], "benchmarks"))

import post_ledger  # noqa: E402
import proxy_overhead  # noqa: E402
import zero_downtime  # noqa: E402
from common import BenchError  # noqa: E402
from loadgen import LoadResult  # noqa: E402
from post_ledger import read_received, reconcile  # noqa: E402


def test_a_clean_run_has_nothing_lost_or_duplicated():
    figures = reconcile(["a", "b", "c"], ["a", "b", "c"], [], {"i1": ["a", "c"], "i2": ["b"]})
    assert (figures["sent"], figures["acknowledged"], figures["received"], figures["received_records"]) == (3, 3, 3, 3)
    assert (figures["lost"], figures["duplicated"], figures["failed_but_received"]) == (0, 0, 0)
    assert figures["received_by_instance"] == {"i1": 2, "i2": 1}


def test_an_acknowledged_id_no_instance_recorded_is_lost():
    figures = reconcile(["a", "b", "c"], ["a", "b", "c"], [], {"i1": ["a", "c"]})
    assert figures["lost"] == 1 and figures["examples"]["lost"] == ["b"]
    assert figures["duplicated"] == 0


def test_a_sent_id_without_answer_or_failure_that_was_not_received_is_lost():
    # No 2xx, but no failure reported either (the load stopped under it): the client was not told of a failure.
    figures = reconcile(["a", "b"], ["a"], [], {"i1": ["a"]})
    assert (figures["unanswered"], figures["lost"]) == (1, 1)
    assert figures["examples"]["lost"] == ["b"]


def test_a_failed_id_is_not_lost_and_one_that_was_received_is_counted_apart():
    # "b" failed and was never received: an honest failure. "c" failed but an instance acted on it.
    figures = reconcile(["a", "b", "c"], ["a"], ["b", "c"], {"i1": ["a", "c"]})
    assert figures["lost"] == 0
    assert (figures["failed"], figures["failed_not_received"], figures["failed_but_received"]) == (2, 1, 1)
    assert figures["examples"]["failed_but_received"] == ["c"]


def test_an_id_received_twice_is_duplicated_on_one_or_two_instances():
    received = {"i1": ["a", "b", "b"], "i2": ["a", "c"]}
    figures = reconcile(["a", "b", "c"], ["a", "b", "c"], [], received)
    assert figures["duplicated"] == 2 and figures["duplicate_records"] == 2
    assert figures["received"] == 3 and figures["received_records"] == 5
    assert figures["examples"]["duplicated"] == [
        {"id": "a", "copies": 2, "instances": ["i1", "i2"]},
        {"id": "b", "copies": 2, "instances": ["i1"]},
    ]
    assert figures["lost"] == 0


def test_an_id_received_three_times_counts_two_extra_records():
    figures = reconcile(["a"], ["a"], [], {"i1": ["a"], "i2": ["a"], "i3": ["a"]})
    assert (figures["duplicated"], figures["duplicate_records"]) == (1, 2)


def test_ids_never_sent_and_ids_sent_twice_are_reported():
    figures = reconcile(["a", "a", "b"], ["a", "b"], [], {"i1": ["a", "b", "z"]})
    assert figures["received_not_sent"] == 1 and figures["examples"]["received_not_sent"] == ["z"]
    assert figures["sent_ids_repeated"] == 1 and figures["sent"] == 2


def test_lost_duplicated_and_failed_but_received_are_counted_by_phase():
    phases = {"a": "kill", "b": "switch 1 flow_proxy", "c": "kill", "d": "kill"}
    figures = reconcile(["a", "b", "c", "d"], ["a", "b"], ["c", "d"], {"i1": ["a", "a", "c"]},
                        phase_of=phases.__getitem__)
    assert figures["by_phase"] == {"lost": {"switch 1 flow_proxy": 1}, "duplicated": {"kill": 1},
                                   "failed_but_received": {"kill": 1}}


def test_ledger_files_are_read_per_instance_and_other_files_ignored(tmp_path):
    (tmp_path / "c8084cefb28a.ids").write_text("r-0-1\nr-0-2\n\nr-1-1\n")
    (tmp_path / "0f3e9a1b2c4d.ids").write_text("r-0-2\n")
    (tmp_path / "notes.txt").write_text("r-9-9\n")
    received = read_received(str(tmp_path))
    assert received == {"0f3e9a1b2c4d": ["r-0-2"], "c8084cefb28a": ["r-0-1", "r-0-2", "r-1-1"]}
    assert reconcile(["r-0-1", "r-0-2", "r-1-1"], ["r-0-1", "r-0-2", "r-1-1"], [], received)["duplicated"] == 1


def test_examples_are_bounded():
    ids = ["id%03d" % n for n in range(50)]
    figures = reconcile(ids, ids, [], {})
    assert figures["lost"] == 50 and len(figures["examples"]["lost"]) == post_ledger.EXAMPLES


# -- zero_downtime: which step a request belongs to ------------------------------------------
SWITCHES = [{"switch": 1, "start": 100.0, "end": 110.0,
             "steps": [{"module": "flow_deploy", "start": 100.0, "end": 104.0},
                       {"module": "flow_proxy", "start": 104.0, "end": 107.0}]}]
EVENTS = [{"name": "kill", "start": 120.0, "end": 125.0}, {"name": "scale-down", "start": 130.0, "end": 140.0}]


@pytest.mark.parametrize("sent, ended, phase", [
    (119.99, 120.2, "kill"),  # in flight when the instance was killed, though sent before
    (119.0, 119.5, "after the last switch"),  # ended before the kill
    (121.0, 121.1, "kill"),  # sent during the settle time after the kill
    (119.9, None, "after the last switch"),  # no end known: placed by when it was sent
    (105.0, 106.0, "switch 1 flow_proxy"),
    (105.0, 120.5, "kill"),  # however long before it was sent
    (131.0, 131.2, "scale-down"),
    (107.5, 107.6, "switch 1 (between steps)"),
])
def test_a_request_in_flight_at_the_kill_counts_at_the_kill(sent, ended, phase):
    assert zero_downtime.phase_of(sent, ended, SWITCHES, EVENTS) == phase


# -- proxy_overhead: rates of 2xx answers only ----------------------------------------------
WRK_OUTPUT = """Running 12s test @ http://127.0.0.1:18180/bench
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.61ms    6.12ms  81.01ms   86.96%
    Req/Sec     2.14k   312.55     2.93k    70.00%
  Latency Distribution
     50%    5.88ms
     75%    8.61ms
     90%   13.44ms
     99%   41.10ms
  51000 requests in 12.00s, 12.10MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 1000
Requests/sec:   4250.00
Transfer/sec:      1.01MB
dockerflow answers: 2xx 48000, other 3000
"""


def test_wrk_rate_counts_2xx_answers_only_and_every_other_answer_or_error_fails():
    figures = proxy_overhead.wrk_figures(WRK_OUTPUT)
    assert figures["requests"] == 51000 and figures["seconds"] == 12.0
    assert figures["answers_2xx"] == 48000
    assert figures["requests_per_second"] == 4000.0  # not wrk's 4250, which counts the 3000 others too
    assert figures["failed"] == 3000 + 5  # non-2xx answers (3xx included) and socket errors
    assert (figures["p50_ms"], figures["p99_ms"]) == (5.88, 41.1)


def test_wrk_output_without_the_status_script_line_is_refused():
    without = "\n".join(line for line in WRK_OUTPUT.splitlines() if not line.startswith("dockerflow answers"))
    with pytest.raises(BenchError, match="no count of 2xx answers"):
        proxy_overhead.wrk_figures(without)


def test_python_rate_counts_2xx_answers_only():
    result = LoadResult()
    result.statuses = Counter({200: 900, 204: 100, 302: 50, 503: 150})
    result.errors = Counter({"ConnectionResetError": 10})
    result.latencies = [0.001] * 1200
    result.finished = result.started + 10.0
    figures = proxy_overhead.python_figures("http://127.0.0.1:1/bench", 32, result)
    assert figures["requests"] == 1210 and figures["answers_2xx"] == 1000
    assert figures["requests_per_second"] == 100.0
    assert figures["failed"] == 210
