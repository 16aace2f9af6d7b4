#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Zero-downtime benchmark: a load through the proxy on 127.0.0.1 while the service is
switched blue <-> green repeatedly (flow_deploy force + flow_proxy + flow_stop_old per
switch, alternating app:1 and app:2). With --backend swarm the service is a Swarm
service on the test cluster and the load goes through the cluster's proxy host
(swarm_cluster.py says what must run first).

Every switch asked for runs. After each one the proxy is asked which color answers:
a switch that did not change the color served is a problem. --max-seconds is a safety
cap on the whole run, not a time limit: a run that reaches it stops, says how far it
got, and exits 2 (incomplete), never 1.

--method POST: every request is a POST with a unique id, served by the recording app
(dockerflow-test/app-record:1/:2, 3 instances a color by default), which writes each id
it receives to a host directory before it answers. Besides the switches, one live
instance is killed (SIGKILL) after switch --kill-after, and the live color is scaled
down to 1 after the last switch. The report then adds sent, acknowledged (2xx), received
by the app, lost (not reported failed to the client, yet never received), duplicated
(received more than once) and failed-but-received (post_ledger.py).

Prints a JSON report (requests, failures = non-2xx answers or connection errors,
requests per color, p50/p99 latency, per-switch durations and colors, and every
failure placed in the step it happened in) and a one-line summary. Exits 1 when the
benchmark saw a problem: a failed request (in POST mode, a POST that failed at the
instance kill is the proxy refusing to replay it, and is reported, not a problem), a
failed switch, a switch that did not change the color served, a lost or duplicated
POST. Exits 2 when the benchmark could not run, or reached its safety cap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

import docker

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
from post_ledger import read_received, reconcile  # noqa: E402
from swarm_cluster import SwarmBench  # noqa: E402

RECORDING_IMAGES = ("dockerflow-test/app-record:1", "dockerflow-test/app-record:2")
RECORD_DIR = "records"  # under the project directory, bind-mounted at /records in every instance
LEDGER_GRACE_SECONDS = 2.0  # after the load: a request the proxy still retries may yet be recorded


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--method", choices=("GET", "POST"), default="GET",
                        help="GET: the load reads; POST: every request a unique id, counted by the recording app")
    parser.add_argument("--switches", type=int, default=10, help="blue<->green switches")
    parser.add_argument("--scale", type=int, default=None,
                        help="instances a color (default: the service's default, 1, for GET; 3 for POST)")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="SIGKILL one live instance after this switch; 0: none (default: 0 for GET, "
                             "half the switches for POST)")
    parser.add_argument("--scale-down", action=argparse.BooleanOptionalAction, default=None,
                        help="flow_scale the live color down to 1 instance after the last switch "
                             "(default: on for POST, off for GET)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds the load runs on after the kill before the next switch")
    parser.add_argument("--post-delay", type=float, default=0.05,
                        help="POST: seconds the app takes after recording an id and before answering "
                             "(the window in which a crash leaves a POST recorded and unanswered)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load")
    parser.add_argument("--requests", type=int, default=20000,
                        help="minimum requests: the load goes on after the last switch until this many were sent")
    parser.add_argument("--max-requests", type=int, default=3000000, help="request budget (hard bound)")
    parser.add_argument("--max-seconds", type=float, default=1800,
                        help="safety cap on the whole run; reaching it ends the run as incomplete (exit 2)")
    parser.add_argument("--rate", type=float, default=None,
                        help="total requests a second (default: as fast as the answers come)")
    parser.add_argument("--fresh-connections", action="store_true",
                        help="a new TCP connection per request instead of keep-alive")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between two switches")
    parser.add_argument("--timeline", action="store_true",
                        help="include the per-second color timeline in the report (always included on failures)")
    args = parser.parse_args()
    check_backend(parser, args, supported=BACKENDS)
    post = args.method == "POST"
    if post and args.backend != "container":
        parser.error("--method POST runs on the container backend only (the app's ledger is a host directory)")
    args.scale = args.scale if args.scale is not None else (3 if post else None)
    args.kill_after = args.kill_after if args.kill_after is not None else (args.switches // 2 if post else 0)
    args.scale_down = args.scale_down if args.scale_down is not None else post
    for name in ("switches", "connections", "requests", "max_requests"):
        if getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name.replace("_", "-"))
    if args.scale is not None and args.scale < 1:
        parser.error("--scale must be 1 or more")
    if not 0 <= args.kill_after <= args.switches:
        parser.error("--kill-after must be from 0 (no kill) to --switches")
    if args.kill_after and (args.scale or 1) < 2:
        parser.error("--kill-after needs --scale 2 or more (an instance must be left to serve)")
    if args.scale_down and (args.scale or 1) < 2:
        parser.error("--scale-down needs --scale 2 or more")
    if args.requests > args.max_requests:
        parser.error("--requests must not exceed --max-requests")
    if args.max_seconds <= 0 or args.settle < 0 or args.post_delay < 0:
        parser.error("--max-seconds must be positive, --settle and --post-delay 0 or more")
    return parser, args


def where(wall, switches, events=()):
    """Name the step running at epoch time ``wall``: a switch step, or an event (kill, scale-down)."""
    for event in events:
        if event["start"] <= wall <= event["end"]:
            return event["name"]
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


def phase_of(sent, ended, switches, events):
    """The step a request belongs to: "kill" when it was in flight at the instance kill, else where it was sent."""
    for event in events:
        if event["name"] == "kill" and sent <= event["start"] <= (ended or sent):
            return "kill"
    return where(sent, switches, events)


def served_colors(url, allowed_hosts, asks=3):
    """The colors the proxy answers with, asked ``asks`` times on fresh connections (one color: a clean switch)."""
    seen = set()
    for _ask in range(asks):
        try:  # 10 s: the load's own answers take up to 3 s on a busy machine
            status, body = http_get(url, timeout=10, allowed_hosts=allowed_hosts)
        except OSError as exc:  # no answer at all: reported as such, the switch counts as not changing the color
            seen.add("no answer (%s)" % exc)
            continue
        seen.add(body.get("color") if status == 200 and isinstance(body, dict) else "HTTP %s" % status)
    return sorted(seen)


def bench_for(args, proxy):
    bench = (SwarmBench if args.backend == "swarm" else Bench)(proxy, keep=args.keep)
    if args.method == "POST":
        bench.app_images = RECORDING_IMAGES
    return bench


def recording_project(bench):
    """The service on the recording app, every instance writing its ledger into one host directory."""
    for image in RECORDING_IMAGES:
        try:
            bench.docker.images.get(image)
        except docker.errors.ImageNotFound:
            raise BenchError("Image %s is missing; run `make images` first." % image)
    project = bench.project("zp")
    records = os.path.join(project.dir, RECORD_DIR)
    os.makedirs(records)
    compose = bench.default_compose(project.image)
    compose["services"]["app"]["volumes"] = ["./%s:/records" % RECORD_DIR]
    project.write_compose(compose)
    return project, records


def kill_one(project, color, settle):
    """SIGKILL one instance of ``color`` under the load, then let the load run ``settle`` seconds."""
    victims = [c for c in project.instances() if c.labels.get("dockerflow.color") == color]
    if not victims:
        raise BenchError("no running %s instance to kill" % color)
    victim = victims[0]
    started = time.time()
    victim.kill(signal="SIGKILL")
    log("killed %s (SIGKILL, %s); the load runs on for %.0fs" % (victim.name, color, settle))
    time.sleep(settle)
    return {"name": "kill", "instance": victim.name, "color": color, "start": started, "end": time.time()}


def scale_down(project, color):
    played = project.run(project.task("flow_scale", scale="1"), check=False)
    step = played.steps()[0]
    event = {"name": "scale-down", "color": color, "start": step["start"] or time.time(),
             "end": step["end"] or time.time(), "seconds": step["seconds"], "problem": played.failure()}
    log("scale-down of %s to 1 instance in %.1fs%s" % (
        color, step["seconds"] or -1, (": " + event["problem"]) if event["problem"] else ""))
    return event


def run_switch(project, number, args, previous_served, url, allowed_hosts):
    image = project.next_image()
    project.set_image(image)
    deploy = project.deploy(force=True, **({"scale": str(args.scale)} if args.scale else {}))
    played = project.run(deploy, project.proxy(), project.stop_old(), check=False)
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
        "problem": played.failure(),
    }
    # Which color answers now: the switch must have moved the service to the color flow_proxy names.
    entry["served_after"] = served_colors(url, allowed_hosts)
    entry["color_changed"] = (entry["served_after"] == [entry["to"]] and entry["to"] != previous_served)
    # SYNs the new instance dropped on a full accept queue (counter of its network namespace,
    # which started with this switch's deploy): HAProxy opening its server connections at once.
    entry["new_instance_listen_overflows"] = {
        c.name: listen_overflows(c) for c in project.instances()
        if c.labels.get("dockerflow.color") == entry["to"]}
    return entry


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    post = args.method == "POST"
    report = {"benchmark": "zero_downtime", "backend": args.backend, "method": args.method}
    started = time.monotonic()
    cap = started + args.max_seconds
    with bench_for(args, proxy) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        report["cluster"] = bench.describe()
        project, records = recording_project(bench) if post else (bench.project("zd"), None)
        url = bench.url()
        load_url = url + ("?sleep=%g" % args.post_delay if post and args.post_delay else "")
        log("setting up %s: deploy (blue%s) and proxy, served at %s" % (
            project.service, ", %d instances" % args.scale if args.scale else "", url))
        setup = project.run(project.deploy(**({"scale": str(args.scale)} if args.scale else {})), project.proxy())
        report["setup_seconds"] = setup.durations()
        status, body = http_get(url, allowed_hosts=bench.allowed_hosts)
        if status != 200 or not isinstance(body, dict):
            raise BenchError("the proxy does not serve %s after the setup: %s %r" % (project.service, status, body))
        served = body.get("color")
        log("proxy serves %s (version %s); load: %s, %d connections%s, >= %d requests; safety cap %ds" % (
            served, body.get("version"), args.method, args.connections,
            " (fresh connection per request)" if args.fresh_connections else " (keep-alive)",
            args.requests, args.max_seconds))

        generator = LoadGenerator(load_url, connections=args.connections, max_requests=args.max_requests,
                                  max_seconds=args.max_seconds, rate=args.rate, method=args.method,
                                  id_prefix=uuid.uuid4().hex[:8], fresh_connections=args.fresh_connections,
                                  allowed_hosts=bench.allowed_hosts)
        switches, events, problems, incomplete = [], [], [], None

        def out_of_bounds(before):
            if time.monotonic() >= cap:
                return "the safety cap of %ds was reached before %s" % (args.max_seconds, before)
            if not generator.running():
                return "the load's request budget (%d) ran out before %s" % (args.max_requests, before)
            return None

        generator.start()
        try:
            time.sleep(1.0)  # the load runs before the first switch starts
            for number in range(1, args.switches + 1):
                incomplete = out_of_bounds("switch %d" % number)
                if incomplete:
                    break
                entry = run_switch(project, number, args, served, url, bench.allowed_hosts)
                switches.append(entry)
                served = entry["served_after"][0] if len(entry["served_after"]) == 1 else None
                log("switch %d: %s -> %s in %.1fs (deploy %.1fs, proxy %.1fs, stop-old %.1fs), serves %s; "
                    "%d requests, %d failed, %d slower than 0.5s so far; new instance accept-queue overflows %s" % (
                        number, entry["from"], entry["to"], entry["seconds"] or -1, entry["deploy_s"] or -1,
                        entry["proxy_s"] or -1, entry["stop_old_s"] or -1, ",".join(entry["served_after"]),
                        generator.result.total, generator.result.failed, len(generator.result.slow_timeline),
                        ",".join(str(v) for v in entry["new_instance_listen_overflows"].values()) or "-"))
                if entry["problem"]:
                    problems.append("switch %d: %s" % (number, entry["problem"]))
                    break
                if not entry["color_changed"]:
                    problems.append("switch %d: the proxy serves %s after a switch %s -> %s" % (
                        number, "/".join(entry["served_after"]), entry["from"], entry["to"]))
                if number == args.kill_after:
                    incomplete = out_of_bounds("the instance kill")
                    if incomplete:
                        break
                    events.append(kill_one(project, served, args.settle))
                elif args.pause:
                    time.sleep(args.pause)
            if not incomplete and not problems and args.scale_down:
                incomplete = out_of_bounds("the scale-down")
                if not incomplete:
                    event = scale_down(project, served)
                    events.append(event)
                    if event["problem"]:
                        problems.append("scale-down: %s" % event["problem"])
            if not incomplete and not problems:
                generator.wait_for(args.requests, deadline=cap)
                if generator.result.total < args.requests:
                    incomplete = out_of_bounds("%d requests were sent" % args.requests)
        finally:
            result = generator.stop()

        summary = result.summary(failures=0)
        final_body = http_get(url, allowed_hosts=bench.allowed_hosts)[1]
        if args.backend == "swarm":
            report["cluster"]["final_placement"] = bench.task_placement(project.service)
        final_served = final_body.get("color") if isinstance(final_body, dict) else None
        ledger = None
        if post:
            time.sleep(LEDGER_GRACE_SECONDS)
            ledger = reconcile(result.sent_ids, result.acknowledged_ids, result.failed_ids, read_received(records),
                               phase_of=lambda request_id: phase_of(result.sent_wall[request_id],
                                                                    result.ended_wall.get(request_id), switches, events))

    failures, phases = [], {}
    for failure in result.failures_timeline:
        phase = phase_of(failure["wall"], failure["ended"], switches, events)
        phases[phase] = phases.get(phase, 0) + 1
        failures.append(dict(failure, phase=phase))
    slow_phases = {}
    for slow in result.slow_timeline:
        phase = where(slow["wall"], switches, events)
        slow_phases[phase] = slow_phases.get(phase, 0) + 1
    # A POST in flight at the killed instance may have been acted on: the proxy must not replay it, so
    # its failure is the honest answer. Every other failed request is a problem.
    failed_at_kill = phases.get("kill", 0) if post else 0
    if result.failed - failed_at_kill:
        problems.insert(0, "%d failed request(s)%s" % (
            result.failed - failed_at_kill, " outside the instance kill" if failed_at_kill else ""))
    if ledger and (ledger["lost"] or ledger["duplicated"] or ledger["received_not_sent"] or ledger["sent_ids_repeated"]):
        problems.append("POST: %d lost, %d duplicated, %d received but never sent" % (
            ledger["lost"], ledger["duplicated"], ledger["received_not_sent"]))
    durations = [s["seconds"] for s in switches if s["seconds"] is not None]
    report.update({
        "load": {
            "url": load_url,
            "method": args.method,
            "connections": args.connections,
            "keep_alive": not args.fresh_connections,
            "rate_limit": args.rate,
            **summary,
        },
        "switches_asked": args.switches,
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
        "events": events,
        "final_color_served": final_served,
        "failures_by_phase": phases,
        "failures": failures[:50],
        "slow_answers_by_phase": slow_phases,  # 2xx answers slower than 0.5s, by the step they started in
        "slowest_answers": [dict(s, phase=where(s["wall"], switches, events))
                            for s in sorted(result.slow_timeline, key=lambda s: -s["ms"])[:10]],
        "post": ledger,
        "run_seconds": round(time.monotonic() - started, 1),
        "safety_cap_seconds": args.max_seconds,
        "incomplete": incomplete,
        "problems": problems,
    })
    if result.failed or args.timeline:
        report["timeline"] = result.timeline()
    verdict = "FAIL" if problems else ("INCOMPLETE" if incomplete else "PASS")
    changed = sum(1 for s in switches if s["color_changed"])
    colors = ", ".join("%s %d" % (c, n) for c, n in sorted(summary["by_color"].items()))
    line = ("zero_downtime %s: %s: %d of %d switch(es) (color changed %d), %d requests in %.0fs (%.0f req/s, %d conns%s), "
            "failed %d; %s; p50 %s ms, p99 %s ms; switch median %ss (deploy %ss, proxy %ss, stop-old %ss)" % (
                args.method, verdict, len(switches), args.switches, changed, summary["requests"], summary["seconds"],
                summary["requests_per_second"] or 0, args.connections,
                ", fresh connections" if args.fresh_connections else ", keep-alive",
                summary["failed"], colors, summary["p50_ms"], summary["p99_ms"],
                report["switch_seconds"]["median"], report["switch_seconds"]["median_deploy"],
                report["switch_seconds"]["median_proxy"], report["switch_seconds"]["median_stop_old"]))
    if ledger:
        line += ("; POST: sent %d, acknowledged %d, received %d, lost %d, duplicated %d, failed %d (%d at the kill), "
                 "failed but received %d" % (
                     ledger["sent"], ledger["acknowledged"], ledger["received"], ledger["lost"],
                     ledger["duplicated"], ledger["failed"], failed_at_kill, ledger["failed_but_received"]))
    for note in problems + ([incomplete] if incomplete else []):
        line += "; " + note
    emit(report, line)
    return 1 if problems else (2 if incomplete else 0)


def _median(switches, key):
    values = [s[key] for s in switches if s.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
