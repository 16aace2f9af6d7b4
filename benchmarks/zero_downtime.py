#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Zero-downtime benchmark: a bounded load through the proxy on 127.0.0.1 while the
service is switched blue <-> green repeatedly (flow_deploy force + flow_proxy +
flow_stop_old per switch, alternating app:1 and app:2). With --backend swarm the
service is a Swarm service on the test cluster and the load goes through the
cluster's proxy host (swarm_cluster.py says what must run first).

Prints a JSON report (requests, failures = non-2xx answers or connection errors,
requests per color, p50/p99 latency, per-switch durations, and every failure placed
in the switch step it happened in) and a one-line summary. Exits 1 when any request
failed or a switch failed, 2 when the benchmark could not run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    BACKENDS,
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
from loadgen import LoadGenerator  # noqa: E402
from swarm_cluster import SwarmBench  # noqa: E402


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--switches", type=int, default=10, help="blue<->green switches")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load")
    parser.add_argument("--requests", type=int, default=20000,
                        help="minimum requests: the load goes on after the last switch until this many were sent")
    parser.add_argument("--max-requests", type=int, default=1000000, help="request budget (hard bound)")
    parser.add_argument("--max-seconds", type=float, default=170, help="time bound of the load")
    parser.add_argument("--rate", type=float, default=None,
                        help="total requests a second (default: as fast as the answers come)")
    parser.add_argument("--fresh-connections", action="store_true",
                        help="a new TCP connection per request instead of keep-alive")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between two switches")
    parser.add_argument("--timeline", action="store_true",
                        help="include the per-second color timeline in the report (always included on failures)")
    args = parser.parse_args()
    check_backend(parser, args, supported=BACKENDS)
    for name in ("switches", "connections", "requests", "max_requests"):
        if getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name.replace("_", "-"))
    if args.requests > args.max_requests:
        parser.error("--requests must not exceed --max-requests")
    return parser, args


def where(wall, switches):
    """Name the switch step running at epoch time ``wall``."""
    for entry in switches:
        for step in entry["steps"]:
            if step["start"] is not None and step["end"] is not None and step["start"] <= wall <= step["end"]:
                return "switch %d %s" % (entry["switch"], step["module"])
        if entry["start"] <= wall <= entry["end"]:
            return "switch %d (between steps)" % entry["switch"]
    if switches and wall < switches[0]["start"]:
        return "before the first switch"
    if switches and wall > switches[-1]["end"]:
        return "after the last switch"
    return "between switches"


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    report = {"benchmark": "zero_downtime", "backend": args.backend}
    bench_class = SwarmBench if args.backend == "swarm" else Bench
    with bench_class(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        report["cluster"] = bench.describe()
        project = bench.project("zd")
        url = bench.url()
        log("setting up %s: deploy (blue) and proxy, served at %s" % (project.service, url))
        setup = project.run(project.deploy(), project.proxy())
        report["setup_seconds"] = setup.durations()
        status, body = http_get(url, allowed_hosts=bench.allowed_hosts)
        if status != 200 or not isinstance(body, dict):
            raise BenchError("the proxy does not serve %s after the setup: %s %r" % (project.service, status, body))
        log("proxy serves %s (version %s); load: %d connections%s, >= %d requests, <= %ds" % (
            body.get("color"), body.get("version"), args.connections,
            " (fresh connection per request)" if args.fresh_connections else " (keep-alive)",
            args.requests, args.max_seconds))

        generator = LoadGenerator(url, connections=args.connections, max_requests=args.max_requests,
                                  max_seconds=args.max_seconds, rate=args.rate,
                                  fresh_connections=args.fresh_connections, allowed_hosts=bench.allowed_hosts)
        switches, switch_error = [], None
        generator.start()
        load_deadline = time.monotonic() + args.max_seconds
        try:
            time.sleep(1.0)  # the load runs before the first switch starts
            for number in range(1, args.switches + 1):
                if not generator.running():
                    switch_error = "the load ended (time or request bound) before switch %d" % number
                    break
                image = project.next_image()
                project.set_image(image)
                played = project.run(project.deploy(force=True), project.proxy(), project.stop_old(), check=False)
                steps = played.steps()
                proxy_result = steps[1]["result"] or {}
                stop_result = steps[2]["result"] or {}
                entry = {
                    "switch": number,
                    "image": image,
                    "from": proxy_result.get("previous_color"),
                    "to": proxy_result.get("color"),
                    "seconds": round(played.times[-1] - played.times[0], 2) if None not in played.times else None,
                    "playbook_s": round(played.seconds, 2),
                    "deploy_s": steps[0]["seconds"],
                    "proxy_s": steps[1]["seconds"],
                    "stop_old_s": steps[2]["seconds"],
                    "drain": next((s for s in stop_result.get("steps") or [] if "drained" in s), None),
                    "start": played.times[0],
                    "end": played.times[-1] if played.times[-1] is not None else time.time(),
                    "steps": [{k: v for k, v in s.items() if k != "result"} for s in steps],
                }
                # SYNs the new instance dropped on a full accept queue (counter of its network namespace,
                # which started with this switch's deploy): HAProxy opening its server connections at once.
                entry["new_instance_listen_overflows"] = {
                    c.name: listen_overflows(c) for c in project.instances()
                    if c.labels.get("dockerflow.color") == entry["to"]}
                switches.append(entry)
                log("switch %d: %s -> %s in %.1fs (deploy %.1fs, proxy %.1fs, stop-old %.1fs); %d requests, %d failed, "
                    "%d slower than 0.5s so far; new instance accept-queue overflows %s" % (
                        number, entry["from"], entry["to"], entry["seconds"] or -1, entry["deploy_s"] or -1,
                        entry["proxy_s"] or -1, entry["stop_old_s"] or -1, generator.result.total,
                        generator.result.failed, len(generator.result.slow_timeline),
                        ",".join(str(v) for v in entry["new_instance_listen_overflows"].values()) or "-"))
                problem = played.failure()
                if problem:
                    switch_error = "switch %d: %s" % (number, problem)
                    break
                if args.pause:
                    time.sleep(args.pause)
            if switch_error is None and not generator.running():
                switch_error = "the load ended (time or request bound) during switch %d" % len(switches)
            if switch_error is None:
                generator.wait_for(args.requests, deadline=load_deadline)
        finally:
            result = generator.stop()

        summary = result.summary(failures=0)
        final_body = http_get(url, allowed_hosts=bench.allowed_hosts)[1]
        if args.backend == "swarm":
            report["cluster"]["final_placement"] = bench.task_placement(project.service)
        served = final_body.get("color") if isinstance(final_body, dict) else None

    failures = []
    phases = {}
    for failure in result.failures_timeline:
        phase = where(failure["wall"], switches)
        phases[phase] = phases.get(phase, 0) + 1
        failures.append(dict(failure, phase=phase))
    slow_phases = {}
    for slow in result.slow_timeline:
        phase = where(slow["wall"], switches)
        slow_phases[phase] = slow_phases.get(phase, 0) + 1
    durations = [s["seconds"] for s in switches if s["seconds"] is not None]
    report.update({
        "load": {
            "url": url,
            "connections": args.connections,
            "keep_alive": not args.fresh_connections,
            "rate_limit": args.rate,
            **summary,
        },
        "switches": [{k: v for k, v in s.items() if k not in ("steps", "start", "end")} for s in switches],
        "switch_seconds": {
            "median": round(statistics.median(durations), 2) if durations else None,
            "min": min(durations) if durations else None,
            "max": max(durations) if durations else None,
            "median_deploy": _median(switches, "deploy_s"),
            "median_proxy": _median(switches, "proxy_s"),
            "median_stop_old": _median(switches, "stop_old_s"),
            "median_playbook": _median(switches, "playbook_s"),
        },
        "final_color_served": served,
        "failures_by_phase": phases,
        "failures": failures[:50],
        "slow_answers_by_phase": slow_phases,  # 2xx answers slower than 0.5s, by the step they started in
        "slowest_answers": [dict(s, phase=where(s["wall"], switches))
                            for s in sorted(result.slow_timeline, key=lambda s: -s["ms"])[:10]],
        "switch_error": switch_error,
    })
    if result.failed or args.timeline:
        report["timeline"] = result.timeline()
    ok = result.failed == 0 and switch_error is None and len(switches) == args.switches
    colors = ", ".join("%s %d" % (c, n) for c, n in sorted(summary["by_color"].items()))
    line = ("zero_downtime: %s: %d switch(es), %d requests in %.0fs (%.0f req/s, %d conns%s), failed %d; %s; "
            "p50 %s ms, p99 %s ms; switch median %ss (deploy %ss, proxy %ss, stop-old %ss)%s" % (
                "PASS" if ok else "FAIL", len(switches), summary["requests"], summary["seconds"],
                summary["requests_per_second"] or 0, args.connections,
                ", fresh connections" if args.fresh_connections else ", keep-alive",
                summary["failed"], colors, summary["p50_ms"], summary["p99_ms"],
                report["switch_seconds"]["median"], report["switch_seconds"]["median_deploy"],
                report["switch_seconds"]["median_proxy"], report["switch_seconds"]["median_stop_old"],
                ("; " + switch_error) if switch_error else ""))
    emit(report, line)
    return 0 if ok else 1


def _median(switches, key):
    values = [s[key] for s in switches if s.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
