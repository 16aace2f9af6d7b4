#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Canary benchmark (issue 13): what users see while flow_canary moves a share of a service's
requests to a new release, and whether the preview route leaks. One project and the bench proxy
on 127.0.0.1 (the route /bench has preview_header X-Flow-Color), blue live (app:1), then green
(app:2) deployed but not live, and three parts, each under its own load through the proxy
(32 keep-alive connections by default):

preview: the preview leak. N normal requests (--preview-requests, no header) while a few
connections ask for the preview color by its header; answers from the preview color among the
normal ones are leaks and must be 0 (the header requests show the preview route answers at all).

good: the good release (green) promoted with flow_canary's gated steps (--steps 5,25,50,100,
--dwell 5 s a step): the task must end `promoted`, the proxy must serve green after it, and no
request of the load may fail. Reports each step's time and the module's counters.

bad: a bad release (the app with APP_ERROR_RATIO=--bad-ratio, 0.2: that share of its answers are
500) deployed on the non-live color, then the same flow_canary: it must abort at the first step.
The failed user requests are compared with the bound first-step% x bad% x the requests the load
sent in one dwell (and, for the record, in the time to the abort); weight_zero_at (the moment the
module's runtime API call took the canary's weight to 0) is compared with the load generator's
first 500 answer, and with its last.

Prints a JSON report and a one-line summary. Exits 1 when what it measures went wrong: a failed
request in the good run, a good release not promoted, a leak, a bad release not aborted at the
first step, more failed requests than the bound. Exits 2 when it could not run (no engine, image,
Consul, module, busy port; the preview color never answering its header; a load that ran out of
its budget or time). Never for slowness.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    REPO,
    Bench,
    BenchError,
    add_common_arguments,
    emit,
    http_get,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    proxy_from_args,
)
from loadgen import LoadGenerator  # noqa: E402
from zero_downtime import served_colors  # noqa: E402

PARTS = ("preview", "good", "bad")
PREVIEW_HEADER = "X-Flow-Color"
CANARY_MODULE = os.path.join(REPO, "plugins", "modules", "flow_canary.py")


# -- pure figures (tests/unit/benchmarks/test_canary_figures.py) --------------------------------
def parse_steps(text):
    """``"5,25,50,100"`` -> [5, 25, 50, 100]: weights from 1 to 100, strictly increasing."""
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError("steps are whole percentages separated by commas, e.g. 5,25,50,100, not %r" % text)
    if not all(1 <= step <= 100 for step in steps) or steps != sorted(set(steps)):
        raise ValueError("steps must be from 1 to 100 and strictly increasing, not %r" % text)
    return steps


def requests_between(by_second, started_wall, start, end):
    """Requests the load sent from epoch ``start`` to ``end``, from its per-second counts (``by_second``:
    second since ``started_wall`` -> {color or "failed": n}), a second counted in proportion to its overlap."""
    total = 0.0
    for second, counts in by_second.items():
        low = started_wall + int(second)
        overlap = min(low + 1, end) - max(low, start)
        if overlap > 0:
            total += overlap * sum(counts.values())
    return total


def failure_bound(weight, bad_ratio, requests):
    """Failed requests a canary at ``weight`` % failing ``bad_ratio`` of its answers costs out of ``requests``."""
    return weight / 100.0 * bad_ratio * requests


def answer_timing(failures, weight_zero_at, status=500):
    """When the load saw the bad release's answers (``status``) against ``weight_zero_at`` (epoch): the first sent,
    the first and last answered, the seconds from the first to weight 0 and from weight 0 to the last, and how many were sent
    after weight 0. ``failures`` are LoadResult.failures_timeline entries ("wall" sent, "ended" answered)."""
    bad = [f for f in failures if f["reason"] == status]
    if not bad:
        return {"answers": 0, "first_sent": None, "first_answered": None, "last_answered": None,
                "first_to_weight_zero_s": None, "weight_zero_to_last_s": None, "sent_after_weight_zero": None}
    first, last = min(f["ended"] for f in bad), max(f["ended"] for f in bad)
    known = weight_zero_at is not None
    return {
        "answers": len(bad),
        "first_sent": min(f["wall"] for f in bad),
        "first_answered": first,
        "last_answered": last,
        "first_to_weight_zero_s": round(weight_zero_at - first, 3) if known else None,
        "weight_zero_to_last_s": round(last - weight_zero_at, 3) if known else None,
        "sent_after_weight_zero": sum(1 for f in bad if f["wall"] > weight_zero_at) if known else None,
    }


def gate_step_start(result):
    """When the breached step began by the module's figures (``weight_zero_at`` less the step's seconds), or None.
    The gate starts a step's clock and counters one runtime call after the weight took effect."""
    canary_steps = result.get("canary_steps") or []
    seconds = canary_steps[-1].get("seconds") if canary_steps else None
    weight_zero_at = result.get("weight_zero_at")
    return weight_zero_at - seconds if weight_zero_at is not None and seconds is not None else None


def exposure_start(result, task_start, first_bad_sent=None):
    """(epoch, what it is): when the canary began to answer, the earlier of the module's step start and the first
    bad request the load sent (``first_bad_sent``); ``task_start`` when neither is known."""
    known = [(gate_step_start(result), "the module's step start"), (first_bad_sent, "the first 500 the load sent")]
    known = [(when, what) for when, what in known if when is not None]
    return min(known) if known else (task_start, "the task's start")


def judge_bad(result, steps, bad_ratio, dwell, failures, by_second, started_wall, task_start, canary_ok=0):
    """The bad release's figures and problems, from flow_canary's ``result`` and the load's failures and counts
    (the time at the first step from ``exposure_start``; ``canary_ok``: the bad color's 200 answers the load got)."""
    canary_steps = result.get("canary_steps") or []
    breach = result.get("breach") or {}
    weight_zero_at = result.get("weight_zero_at")
    first = steps[0]
    timing = answer_timing(failures, weight_zero_at)
    start, start_from = exposure_start(result, task_start, timing["first_sent"])
    in_dwell = requests_between(by_second, started_wall, start, start + dwell)
    bound = failure_bound(first, bad_ratio, in_dwell)
    to_abort = requests_between(by_second, started_wall, start, weight_zero_at) if weight_zero_at else None
    failed = len(failures)
    gate_start = gate_step_start(result)
    figures = {
        "outcome": result.get("outcome"),
        "msg": result.get("msg"),
        "breach": breach or None,
        "canary_steps": canary_steps,
        "weight_zero_at": weight_zero_at,
        "exposure_start": round(start, 3),
        "exposure_start_from": start_from,
        # How long the canary answered before the gate's step began (its counters' baseline), at least.
        "answering_before_the_gate_s": round(gate_start - start, 3) if gate_start is not None else None,
        "canary_answers_seen_by_load": canary_ok + timing["answers"],
        "canary_requests_counted_by_gate": sum(step.get("requests") or 0 for step in canary_steps),
        "failed": failed,
        "failed_500": sum(1 for f in failures if f["reason"] == 500),
        "failed_other": sum(1 for f in failures if f["reason"] != 500),
        "requests_in_dwell": round(in_dwell),
        "bound_dwell": round(bound, 1),
        "requests_to_abort": round(to_abort) if to_abort is not None else None,
        "bound_to_abort": round(failure_bound(first, bad_ratio, to_abort), 1) if to_abort is not None else None,
        "answers_500": timing,
    }
    problems = []
    if figures["outcome"] != "aborted":
        problems.append("the bad release was %s" % (
            "promoted" if figures["outcome"] == "promoted" else
            "not aborted (flow_canary: %s)" % (figures["msg"] or "outcome %s" % figures["outcome"])))
    elif breach.get("weight") != first or len(canary_steps) > 1:
        problems.append("the bad release was aborted at weight %s (step %s), not at the first step (%d%%)" % (
            breach.get("weight"), breach.get("step"), first))
    if failed > bound:
        problems.append("%d failed requests, more than the bound %.1f (%d%% x %g x %d requests in the %gs dwell)" % (
            failed, figures["bound_dwell"], first, bad_ratio, figures["requests_in_dwell"], dwell))
    return figures, problems


def judge_good(result, failed, served_after):
    problems = []
    if result.get("outcome") != "promoted":
        problems.append("the good release was not promoted (flow_canary: %s)" % (
            result.get("msg") or "outcome %s" % result.get("outcome")))
    elif served_after != [result.get("color")]:
        problems.append("the proxy serves %s after promoting %s" % ("/".join(served_after), result.get("color")))
    if failed:
        problems.append("%d failed request(s) while the good release was promoted" % failed)
    return problems


# -- the run ---------------------------------------------------------------------------------
def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)

    def steps(text):
        try:
            return parse_steps(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc))

    parser.add_argument("--parts", default=",".join(PARTS),
                        help="which parts to run, of %s (preview needs no flow_canary)" % ",".join(PARTS))
    parser.add_argument("--steps", type=steps, default=[5, 25, 50, 100], help="flow_canary's canary_steps")
    parser.add_argument("--dwell", type=float, default=5.0, help="seconds a step (flow_canary's canary_dwell)")
    parser.add_argument("--bad-ratio", type=float, default=0.2,
                        help="share of the bad release's answers that are 500 (the app's APP_ERROR_RATIO)")
    parser.add_argument("--max-error-ratio", type=float, default=0.01, help="flow_canary's canary_max_error_ratio")
    parser.add_argument("--min-requests", type=int, default=20, help="flow_canary's canary_min_requests")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load")
    parser.add_argument("--rate", type=float, default=None,
                        help="total requests a second (default: as fast as the answers come)")
    parser.add_argument("--preview-requests", type=int, default=20000,
                        help="normal requests (no header) counted for leaks while the preview color is deployed")
    parser.add_argument("--preview-connections", type=int, default=2,
                        help="connections asking for the preview color by its header meanwhile")
    parser.add_argument("--max-requests", type=int, default=3000000, help="request budget of each part's load")
    parser.add_argument("--max-seconds", type=float, default=900,
                        help="safety cap of each part's load; reaching it makes the run incomplete (exit 2)")
    args = parser.parse_args()
    args.parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not args.parts or set(args.parts) - set(PARTS):
        parser.error("--parts takes some of %s" % ",".join(PARTS))
    if not 0 < args.bad_ratio <= 1 or not 0 <= args.max_error_ratio < 1:
        parser.error("--bad-ratio must be in (0, 1], --max-error-ratio in [0, 1)")
    if args.dwell <= 0 or args.max_seconds <= 0:
        parser.error("--dwell and --max-seconds must be positive")
    for name in ("connections", "preview_requests", "preview_connections", "max_requests", "min_requests"):
        if getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name.replace("_", "-"))
    return parser, args


def load(url, args, bench, **options):
    params = {"connections": args.connections, "max_requests": args.max_requests, "max_seconds": args.max_seconds,
              "rate": args.rate, "allowed_hosts": bench.allowed_hosts}
    params.update(options)
    return LoadGenerator(url, **params)


def ran_out(generator, args):
    """Why the load stopped on its own before the part ended (budget or safety cap), or None."""
    if generator.running():
        return None
    return "the load stopped (budget %d requests or cap %ds) before the part ended" % (args.max_requests, args.max_seconds)


def run_canary(project, args, generator):
    """flow_canary under the running load (which starts a second before it): its result, its start (epoch), its
    seconds, and why the part is incomplete, if the load ran out meanwhile."""
    time.sleep(1.0)
    task = project.task("flow_canary", canary_steps=args.steps, canary_dwell="%dms" % round(args.dwell * 1000),
                        canary_max_error_ratio=args.max_error_ratio, canary_min_requests=args.min_requests)
    step = project.run(task, check=False).steps()[0]
    return step["result"] or {}, step["start"] or time.time(), step["seconds"], ran_out(generator, args)


def wait_for_preview(url, color, allowed_hosts, timeout=15):
    """The proxy finds a new color's instances by Consul DNS, about a second after flow_deploy."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = http_get(url, timeout=10, allowed_hosts=allowed_hosts, headers={PREVIEW_HEADER: color})
        if status == 200 and isinstance(body, dict) and body.get("color") == color:
            return
        if time.monotonic() > deadline:
            raise BenchError("the preview color %s does not answer requests naming it in %s after %ds: %s %r" % (
                color, PREVIEW_HEADER, timeout, status, body))
        time.sleep(0.5)


def preview_part(bench, project, args, url, live, preview):
    wait_for_preview(url, preview, bench.allowed_hosts)
    log("preview: %d normal requests over %d connections, %d connection(s) asking for %s by %s" % (
        args.preview_requests, args.connections, args.preview_connections, preview, PREVIEW_HEADER))
    normal = load(url, args, bench, max_requests=args.preview_requests)
    asking = load(url, args, bench, connections=args.preview_connections, headers={PREVIEW_HEADER: preview})
    asking.start()
    normal.start()
    normal_result = normal.wait()
    asking_summary = asking.stop().summary(failures=5)
    summary = normal_result.summary(failures=5)
    leaks = summary["by_color"].get(preview, 0)
    figures = {
        "live": live, "preview": preview, "header": PREVIEW_HEADER,
        "normal": summary,
        "asking": {k: asking_summary[k] for k in ("requests", "failed", "by_color", "statuses")},
        "leaks": leaks,
    }
    incomplete = "preview: only %d of %d requests sent" % (summary["requests"], args.preview_requests) \
        if summary["requests"] < args.preview_requests else None
    problems = ["%d of %d normal requests answered by the preview color %s" % (leaks, summary["requests"], preview)] \
        if leaks else []
    log("preview: %d normal requests (%s), %d leak(s); %d asking (%s)" % (
        summary["requests"], _colors(summary["by_color"]), leaks, figures["asking"]["requests"],
        _colors(figures["asking"]["by_color"])))
    return figures, problems, incomplete


def good_part(bench, project, args, url):
    generator = load(url, args, bench).start()
    try:
        outcome, task_start, seconds, incomplete = run_canary(project, args, generator)
        time.sleep(1.0)
    finally:
        result = generator.stop()
    served = served_colors(url, bench.allowed_hosts)
    summary = result.summary(failures=10)
    figures = {
        "outcome": outcome.get("outcome"),
        "msg": outcome.get("msg"),
        "color": outcome.get("color"),
        "previous_color": outcome.get("previous_color"),
        "task_seconds": seconds,
        "step_seconds": [s.get("seconds") for s in outcome.get("canary_steps") or []],
        "canary_steps": outcome.get("canary_steps"),
        "served_after": served,
        "load": summary,
        # The share as the load saw it: [second since the task's start, {color: answers}] (requests by start time).
        "timeline": [[round(second + result.started_wall - task_start), counts] for second, counts in result.timeline()],
    }
    problems = judge_good(outcome, summary["failed"], served)
    log("good: %s in %s s (steps %s s), served after: %s; %d requests, %d failed%s" % (
        figures["outcome"], _value(seconds), "/".join(map(_value, figures["step_seconds"])), ",".join(served),
        summary["requests"], summary["failed"], "" if figures["outcome"] == "promoted" else "; %s" % figures["msg"]))
    return figures, problems, incomplete


def bad_part(bench, project, args, url):
    image = project.next_image()
    compose = bench.default_compose(image)
    compose["services"]["app"]["environment"] = {"APP_ERROR_RATIO": "%g" % args.bad_ratio}
    project.image = image
    project.write_compose(compose)
    deployed = project.run(project.deploy())
    color = (deployed.steps()[0]["result"] or {}).get("color")
    wait_for_preview(url, color, bench.allowed_hosts)  # resolved by the proxy, so the first step has a server
    log("bad: %s (APP_ERROR_RATIO=%g) deployed on %s; canary under load" % (image, args.bad_ratio, color))
    generator = load(url, args, bench).start()
    try:
        outcome, task_start, seconds, incomplete = run_canary(project, args, generator)
        # The load goes on for a whole dwell from the canary's first weight (the bound counts its requests), and a
        # second past weight 0 (the last bad answers).
        until = max(exposure_start(outcome, task_start)[0] + args.dwell, (outcome.get("weight_zero_at") or 0) + 1.0,
                    time.time() + 0.5)
        time.sleep(max(0.0, until - time.time()))
    finally:
        result = generator.stop()
    figures, problems = judge_bad(outcome, args.steps, args.bad_ratio, args.dwell, result.failures_timeline,
                                  result.by_second, result.started_wall, task_start, result.colors.get(color, 0))
    figures.update({
        "color": color,
        "task_seconds": seconds,
        "served_after": served_colors(url, bench.allowed_hosts),
        "load": result.summary(failures=10),
    })
    timing = figures["answers_500"]
    log("bad: %s (%s) in %s s, %d failed (bound %s in the dwell, %s to the abort); first 500 -> weight 0 %s s, "
        "weight 0 -> last 500 %s s; the canary answered %s s before the gate's step began, %d answers seen by the "
        "load, %d counted by the gate" % (
            figures["outcome"], figures["msg"], _value(figures["task_seconds"]), figures["failed"],
            figures["bound_dwell"], _value(figures["bound_to_abort"]), _value(timing["first_to_weight_zero_s"]),
            _value(timing["weight_zero_to_last_s"]), _value(figures["answering_before_the_gate_s"]),
            figures["canary_answers_seen_by_load"], figures["canary_requests_counted_by_gate"]))
    return figures, problems, incomplete


def _value(value):
    return "n/a" if value is None else str(value)


def _colors(counts):
    return ", ".join("%s %d" % item for item in sorted(counts.items())) or "none"


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    if {"good", "bad"} & set(args.parts) and not os.path.exists(CANARY_MODULE):
        raise BenchError("plugins/modules/flow_canary.py is not in this checkout: run --parts preview")
    report = {"benchmark": "canary", "parts": args.parts, "steps": args.steps, "dwell_s": args.dwell,
              "bad_ratio": args.bad_ratio, "max_error_ratio": args.max_error_ratio, "min_requests": args.min_requests,
              "connections": args.connections}
    problems, incomplete = [], []
    started = time.monotonic()
    with Bench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        project = bench.project("cn")
        url = bench.url()
        log("setting up %s: blue (%s) routed at %s with preview_header %s" % (
            project.service, project.image, url, PREVIEW_HEADER))
        setup = project.run(project.deploy(), project.proxy(preview_header=PREVIEW_HEADER))
        live = (setup.steps()[1]["result"] or {}).get("color")
        project.set_image(project.next_image())
        release = project.run(project.deploy())
        preview = (release.steps()[0]["result"] or {}).get("color")
        report["setup_seconds"] = dict(setup.durations(), second_release=release.seconds)
        log("%s live, %s (%s) deployed, not live" % (live, preview, project.image))
        for name, part in (("preview", lambda: preview_part(bench, project, args, url, live, preview)),
                           ("good", lambda: good_part(bench, project, args, url)),
                           ("bad", lambda: bad_part(bench, project, args, url))):
            if name not in args.parts:
                continue
            if name == "bad" and "good" in report and report["good"]["outcome"] != "promoted":
                # flow_deploy refuses to replace a canary that takes requests, and a failed gate left it so.
                incomplete.append("bad: not run, the good release's canary was not promoted")
                break
            try:
                figures, found, stopped = part()
            except BenchError as error:  # the parts before keep their figures in the report
                incomplete.append("%s: %s" % (name, error))
                break
            report[name] = figures
            problems.extend("%s: %s" % (name, problem) for problem in found)
            if stopped:
                incomplete.append("%s: %s" % (name, stopped))
                break
    report.update({"run_seconds": round(time.monotonic() - started, 1), "problems": problems,
                   "incomplete": incomplete or None})
    emit(report, summary_line(report, problems, incomplete))
    return 1 if problems else (2 if incomplete else 0)


def summary_line(report, problems, incomplete):
    verdict = "FAIL" if problems else ("INCOMPLETE" if incomplete else "PASS")
    parts = []
    if "preview" in report:
        preview = report["preview"]
        parts.append("preview: %d leak(s) in %d normal requests" % (preview["leaks"], preview["normal"]["requests"]))
    if "good" in report:
        good = report["good"]
        parts.append("good: %s in %s s (steps %s s), %d of %d requests failed" % (
            good["outcome"], _value(good["task_seconds"]), "/".join(map(_value, good["step_seconds"])),
            good["load"]["failed"], good["load"]["requests"]))
    if "bad" in report:
        bad = report["bad"]
        timing = bad["answers_500"]
        parts.append("bad: %s at weight %s, %d failed (bound %s in a %g s dwell, %s to the abort), first 500 -> "
                     "weight 0 %s s, weight 0 -> last 500 %s s" % (
                         bad["outcome"], _value((bad["breach"] or {}).get("weight")), bad["failed"], bad["bound_dwell"],
                         report["dwell_s"], _value(bad["bound_to_abort"]), _value(timing["first_to_weight_zero_s"]),
                         _value(timing["weight_zero_to_last_s"])))
    line = "canary %s: %s" % (verdict, "; ".join(parts))
    for note in problems + incomplete:
        line += "; " + note
    return line


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
