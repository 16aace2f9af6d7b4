#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Proxy overhead benchmark: throughput and p99 latency through the proxy against
straight to the single instance's published port (the service is deployed with
scale 1, so both paths end at the same one instance), with the same load.

Throughput figures come from wrk when it is installed (``apt-get install wrk``),
else from the Python load generator; the Python generator runs too, with the same
32 connections, and both tools are also pointed at an answer HAProxy gives itself
(the stats listener's /healthz) to show each tool's own ceiling on this machine.
Rates count 2xx answers only (wrk through benchmarks/wrk_status.lua, which tells 2xx
from the rest). Prints a JSON report, the ratio proxy rps / direct rps and whether the
goal (>= 0.8) is met. A missed goal does not fail the run; a failed request (an answer
other than 2xx, or a connection error) does: exit 1. Exit 2 when the benchmark could
not run.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    SERVICE_PATH,
    Bench,
    BenchError,
    add_common_arguments,
    check_backend,
    emit,
    http_get,
    listen_overflows,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    proxy_from_args,
)
from loadgen import check_loopback, run_load  # noqa: E402

GOAL = 0.8
WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_status.lua")
# Per-run figures kept in the JSON report.
RUN_FIELDS = ("requests", "answers_2xx", "seconds", "requests_per_second", "p50_ms", "p99_ms", "failed",
              "app_listen_overflows")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=6000, help="requests per Python generator run")
    parser.add_argument("--duration", type=int, default=12, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating direct/proxy rounds per tool (mean throughput, median latencies)")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk for the headline figures when installed, and the Python generator as well")
    parser.add_argument("--max-seconds", type=float, default=40, help="time bound of one Python generator run")
    args = parser.parse_args()
    check_backend(parser, args)
    if args.tool == "wrk" and not shutil.which("wrk"):
        parser.error("--tool wrk: wrk is not installed (apt-get install -y wrk)")
    for name in ("connections", "requests", "duration", "threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name)
    return parser, args


def _latency_ms(text):
    match = re.match(r"^([0-9.]+)(us|ms|s|m)$", text)
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3) if match else None


def run_wrk(url, connections, threads, duration):
    check_loopback(url)
    command = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency", "--timeout", "5s",
               "-s", WRK_SCRIPT, url]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=False)
    out = completed.stdout
    if completed.returncode != 0:
        raise BenchError("wrk failed (%d): %s" % (completed.returncode, completed.stderr.strip() or out[-500:]))
    figures = wrk_figures(out)
    figures.update({"tool": "wrk", "url": url, "connections": connections, "threads": threads})
    return figures


def wrk_figures(out):
    """Figures of one wrk run from its output (``--latency``, with wrk_status.lua): rates of 2xx answers only."""
    figures = {}
    match = re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m)", out)
    if not match:
        raise BenchError("wrk printed no request count: %s" % out[-500:])
    figures["requests"] = int(match.group(1))
    figures["seconds"] = round(_latency_ms(match.group(2) + match.group(3)) / 1000.0, 2)
    match = re.search(r"^dockerflow answers: 2xx (\d+), other (\d+)$", out, re.M)
    if not match:
        raise BenchError("wrk printed no count of 2xx answers (is %s in use?): %s" % (WRK_SCRIPT, out[-500:]))
    figures["answers_2xx"], other = int(match.group(1)), int(match.group(2))
    figures["requests_per_second"] = round(figures["answers_2xx"] / figures["seconds"], 1) if figures["seconds"] else None
    for percent in ("50", "90", "99"):
        match = re.search(r"^\s+%s%%\s+(\S+)" % percent, out, re.M)
        figures["p%s_ms" % percent] = _latency_ms(match.group(1)) if match else None
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(n) for n in match.groups()) if match else 0
    figures["failed"] = errors + other
    return figures


def run_python(url, connections, requests, max_seconds):
    return python_figures(url, connections, run_load(url, requests, connections=connections, max_seconds=max_seconds))


def python_figures(url, connections, result):
    """Figures of one Python generator run (a LoadResult): the rate counts 2xx answers only."""
    summary = result.summary(failures=3)
    answers_2xx = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    return {"tool": "python", "url": url, "connections": connections, "requests": summary["requests"],
            "answers_2xx": answers_2xx, "seconds": summary["seconds"],
            "requests_per_second": round(answers_2xx / summary["seconds"], 1) if summary["seconds"] else None,
            "p50_ms": summary["p50_ms"], "p90_ms": summary["p90_ms"], "p99_ms": summary["p99_ms"],
            "failed": summary["failed"], "first_failures": summary["first_failures"]}


def aggregate(runs):
    """Mean throughput and median latencies over the runs of one path; each run is kept."""
    def median(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    rates = [r["requests_per_second"] or 0 for r in runs]
    return {
        "tool": runs[0]["tool"],
        "url": runs[0]["url"],
        "connections": runs[0]["connections"],
        "requests_per_second": round(statistics.mean(rates), 1),
        "p50_ms": median("p50_ms"),
        "p90_ms": median("p90_ms"),
        "p99_ms": median("p99_ms"),
        "failed": sum(r["failed"] for r in runs),
        "runs": [{k: r.get(k) for k in RUN_FIELDS} for r in runs],
    }


def measure(tool, args, targets, instance):
    """Alternate direct and proxy for ``args.rounds`` rounds, then the tool's ceiling once."""
    def one(url):
        before = listen_overflows(instance)
        if tool == "wrk":
            figures = run_wrk(url, args.connections, args.threads, args.duration)
        else:
            figures = run_python(url, args.connections, args.requests, args.max_seconds)
        after = listen_overflows(instance)
        if before is not None and after is not None and url != targets["ceiling"]:
            figures["app_listen_overflows"] = after - before
        return figures

    runs = {"direct": [], "proxy": []}
    for number in range(args.rounds):
        order = ("direct", "proxy") if number % 2 == 0 else ("proxy", "direct")
        for name in order:
            figures = one(targets[name])
            runs[name].append(figures)
            log("%s %s round %d: %.0f req/s, p99 %s ms, failed %d, app accept-queue overflows %s" % (
                tool, name, number + 1, figures["requests_per_second"] or 0, figures["p99_ms"], figures["failed"],
                figures.get("app_listen_overflows")))
    ceiling = one(targets["ceiling"])
    log("%s ceiling (HAProxy answering itself): %.0f req/s, p99 %s ms" % (
        tool, ceiling["requests_per_second"] or 0, ceiling["p99_ms"]))
    direct, proxied = aggregate(runs["direct"]), aggregate(runs["proxy"])
    ratio = (proxied["requests_per_second"] / direct["requests_per_second"]) if direct["requests_per_second"] else None
    return {
        "direct": direct,
        "proxy": proxied,
        "ceiling_haproxy_self_answer": ceiling,
        "ratio_proxy_to_direct": round(ratio, 3) if ratio is not None else None,
        "p99_added_ms": round(proxied["p99_ms"] - direct["p99_ms"], 2)
        if proxied.get("p99_ms") is not None and direct.get("p99_ms") is not None else None,
    }


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    have_wrk = bool(shutil.which("wrk"))
    tools = {"auto": (["wrk"] if have_wrk else []) + ["python"], "wrk": ["wrk"], "python": ["python"]}[args.tool]
    report = {"benchmark": "proxy_overhead", "backend": args.backend, "goal_ratio": GOAL,
              "wrk_installed": have_wrk, "tools": tools}
    with Bench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        project = bench.project("po")
        log("setting up %s: deploy with scale 1, proxy on 127.0.0.1:%d" % (project.service, proxy.http_port))
        project.run(project.deploy(scale="1"), project.proxy())
        instances = project.instances()
        if len(instances) != 1:
            raise BenchError("expected 1 running instance, found %d" % len(instances))
        targets = {
            "direct": "http://127.0.0.1:%d%s" % (project.instance_port(instances[0]), SERVICE_PATH),
            "proxy": proxy.url(),
            "ceiling": "http://127.0.0.1:%d/healthz" % proxy.stats_port,
        }
        for name in ("direct", "proxy"):
            status, body = http_get(targets[name])
            if status != 200 or not isinstance(body, dict):
                raise BenchError("%s target %s answers %s %r" % (name, targets[name], status, body))
        report["targets"] = targets
        report["instance"] = instances[0].name
        # Warm both paths (HAProxy's server connections, the app's threads) before measuring.
        report["warm_up_failed"] = sum(
            run_load(targets[name], 500, connections=args.connections, max_seconds=10).failed for name in ("proxy", "direct"))
        started = time.monotonic()
        for tool in tools:
            report[tool] = measure(tool, args, targets, instances[0])
        report["measure_seconds"] = round(time.monotonic() - started, 1)

    headline_tool = tools[0]
    headline = report[headline_tool]
    ratio = headline["ratio_proxy_to_direct"]
    report["headline_tool"] = headline_tool
    report["goal_met"] = bool(ratio is not None and ratio >= GOAL)
    report["failed"] = report["warm_up_failed"] + sum(
        report[tool][part]["failed"] for tool in tools for part in ("direct", "proxy", "ceiling_haproxy_self_answer"))
    parts = []
    for tool in tools:
        figures = report[tool]
        parts.append("%s: direct %.0f req/s p99 %s ms, proxy %.0f req/s p99 %s ms, ratio %.2f, tool ceiling %.0f req/s" % (
            tool, figures["direct"]["requests_per_second"] or 0, figures["direct"]["p99_ms"],
            figures["proxy"]["requests_per_second"] or 0, figures["proxy"]["p99_ms"],
            figures["ratio_proxy_to_direct"] or 0, figures["ceiling_haproxy_self_answer"]["requests_per_second"] or 0))
    line = "proxy_overhead (%d conns, 1 instance): %s: %s; goal proxy/direct >= %.1f %s (by %s); failed %d" % (
        args.connections, "FAIL" if report["failed"] else "PASS", "; ".join(parts), GOAL,
        "MET" if report["goal_met"] else "NOT MET", headline_tool, report["failed"])
    emit(report, line)
    return 1 if report["failed"] else 0


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
