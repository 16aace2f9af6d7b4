#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Proxy overhead benchmark: throughput and p99 latency through the proxy against
straight to the single instance's published port (the service is deployed with
scale 1, so both paths end at the same one instance), with the same load; and,
in the same run, through a stock Debian nginx set up as a typical reverse proxy in
front of the same instance (benchmarks/nginx_peer.py; --no-nginx leaves it out).
Rounds alternate direct / Flow's proxy / nginx, in a rotating order. Each proxy's
CPU time per 1000 requests is read from /proc/<pid>/stat (utime + stime of its
container's processes) before and after each of its runs.

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

import argparse
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
    module_utils,
    parser_for,
    port_free,
    proxy_from_args,
    proxy_node_for,
)
from cpu_time import container_cpu_seconds, process_cpu_seconds  # noqa: E402
from loadgen import check_loopback, run_load  # noqa: E402
from nginx_peer import NGINX_IMAGE, NginxPeer  # noqa: E402

GOAL = 0.8
ACCESS_LOGS = ("all", "errors", "off")  # flow_proxy's proxy_access_log choices
WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_status.lua")
# The measured paths: straight to the instance, through Flow's proxy, through the nginx peer.
PATHS = ("direct", "proxy", "nginx")
PROXIES = {"proxy": "Flow's proxy", "nginx": "nginx"}
CPU_SOURCE = ("utime + stime from /proc/<pid>/stat of the proxy container's processes (host PIDs from docker top), "
              "read before and after each run")
# Per-run figures kept in the JSON report.
RUN_FIELDS = ("requests", "answers_2xx", "seconds", "requests_per_second", "p50_ms", "p99_ms", "failed",
              "app_listen_overflows", "cpu_seconds", "cpu_seconds_per_1000_requests",
              "dockerd_cpu_seconds_per_1000_requests")
# The access log goes through Docker's log driver: its cost is dockerd's CPU, not the proxy container's.
ENGINE_PROCESS = "dockerd"
# --variants: HAProxy tunings measured against the rendered configuration, each a (global lines, defaults lines)
# pair added to it. Not user options: the benchmark installs the changed file and reloads, as flow_proxy does.
VARIANTS = {
    "baseline": ((), ()),
    "nbthread1": (("nbthread 1",), ()),  # one thread (the default is one a CPU: 2 here)
    "nbthread2-cpumap": (("nbthread 2", "cpu-map auto:1/1-2 0-1"), ()),  # 2 threads, each pinned to its own CPU
    "reuse-always": ((), ("http-reuse always",)),  # the default is safe
    "bufsize32k": (("tune.bufsize 32768",), ()),  # the default is 16384
    "server-close": ((), ("option http-server-close",)),  # a new server connection per request (default: kept alive)
    "dontlog-normal": ((), ("option dontlog-normal",)),  # what proxy_access_log=errors renders, in the same run
    # L7 retries keep a copy of each request for a replay; connection failures alone need none. Measured to know
    # the cost, not a candidate: empty-response and response-timeout retries are part of the zero-downtime switch.
    "retry-conn-only": ((), ("retry-on conn-failure",)),
    # Not a tuning: HAProxy with none of Flow's per-request work (bare_config), to tell HAProxy's own cost from it.
    "bare": ((), ()),
}
# What the "bare" variant keeps of the rendered defaults, by keyword: the mode, the timeouts and the server state;
# not the access log, retries, redispatch or keep-alive rules.
BARE_DEFAULTS_KEPT = ("mode", "timeout", "load-server-state-from-file", "default-server")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=6000, help="requests per Python generator run")
    parser.add_argument("--duration", type=int, default=12, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds per tool over direct / proxy / nginx, in an order rotating each round "
                             "(mean throughput, median latencies and ratios)")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk for the headline figures when installed, and the Python generator as well")
    parser.add_argument("--max-seconds", type=float, default=40, help="time bound of one Python generator run")
    parser.add_argument("--nginx-port", type=int, default=18184,
                        help="loopback port of the nginx peer (image %s, `make images-bench`)" % NGINX_IMAGE)
    parser.add_argument("--no-nginx", action="store_true", help="measure without the nginx peer")
    parser.add_argument("--access-log", type=access_log_list, default=[],
                        help="proxy_access_log of Flow's proxy (all, errors, off), and the same access log for the "
                             "nginx peer; several, comma-separated (all,off), take turns a round each, set with a "
                             "flow_proxy run before the round, and the nginx peer logs every request "
                             "(default: flow_proxy's own default; the peer logs every request)")
    parser.add_argument("--variants", type=variant_list, default=[],
                        help="HAProxy tunings taking turns a round each, comma-separated, of: %s; each round's "
                             "configuration is the rendered one with the variant's lines added, checked and "
                             "reloaded before the round (with --access-log, one value only)" % ", ".join(VARIANTS))
    args = parser.parse_args()
    check_backend(parser, args)
    if args.variants and len(args.access_log) > 1:
        parser.error("--variants takes one --access-log value at most")
    turns = max(len(args.access_log), len(args.variants))
    if turns > args.rounds:
        parser.error("%d settings taking turns need --rounds %d or more" % (turns, turns))
    if args.tool == "wrk" and not shutil.which("wrk"):
        parser.error("--tool wrk: wrk is not installed (apt-get install -y wrk)")
    for name in ("connections", "requests", "duration", "threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error("--%s must be 1 or more" % name)
    if not 1024 < args.nginx_port < 65536:
        parser.error("--nginx-port must be a port number above 1024")
    return parser, args


def choice_list(choices):
    """An argparse type: some of ``choices``, comma-separated, each once."""
    def parse(text):
        values = [value.strip() for value in text.split(",") if value.strip()]
        wrong = [value for value in values if value not in choices]
        if wrong or not values or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError("use %s, or several of them comma-separated, each once" % ", ".join(choices))
        return values
    return parse


access_log_list = choice_list(ACCESS_LOGS)  # --access-log: proxy_access_log choices
variant_list = choice_list(VARIANTS)  # --variants: names of VARIANTS


def variant_config(config, variant, generation):
    """``config`` (as flow_proxy rendered it) with ``variant``'s lines last in its global and defaults sections
    (where they override a rendered line of the same keyword), and the generation (in the live colors' map)
    renamed to ``generation``, so that the reload is seen to have loaded it."""
    global_lines, defaults_lines = VARIANTS[variant]
    lines = bare_config(config).splitlines() if variant == "bare" else config.splitlines()
    for section, added in (("global", global_lines), ("defaults", defaults_lines)):
        at = lines.index("", lines.index(section))  # the blank line that ends the section
        lines[at:at] = ["    %s" % line for line in added]
    # A line of its own, so that the body differs from the running one's and the round starts on a new worker
    # (a configuration that differs only in the live colors would be swapped in without a reload: live_map).
    live_map = module_utils("live_map")
    body = live_map.body("\n".join(lines + ["# proxy_overhead round %s" % generation]) + "\n")
    entries = dict(live_map.LiveMap.of_config(config).entries, **{live_map.BODY_KEY: live_map.digest(body, 16)})
    return body + live_map.trailer(entries.items(), generation)


def bare_config(config):
    """``config`` with its defaults and its HTTP frontend cut to what any HAProxy in front of one service has: the
    frontend's binds and its first routed backend as the default one (no ACME, retry or routing rules)."""
    sections = re.split(r"\n(?=\S)", config)
    for index, section in enumerate(sections):
        lines = section.splitlines()
        if lines[0] == "defaults":
            kept = [line for line in lines[1:] if line.split()[:1] and line.split()[0] in BARE_DEFAULTS_KEPT]
            sections[index] = "\n".join([lines[0]] + kept + [""])
        elif lines[0] == "frontend http":
            binds = [line for line in lines if line.strip().startswith("bind ")]
            # The first routed service, and its live color from the live colors' map the configuration carries.
            service, color = next(pair for pair in sorted(module_utils("live_map").LiveMap.of_config(config).entries.items())
                                  if not pair[0].startswith("."))
            sections[index] = "\n".join([lines[0]] + binds + ["    default_backend be_%s_%s" % (service, color), ""])
    return "\n".join(sections)


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
    def median(key, digits=2):
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), digits) if values else None

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
        "cpu_seconds_per_1000_requests": median("cpu_seconds_per_1000_requests", digits=4),
        "dockerd_cpu_seconds_per_1000_requests": median("dockerd_cpu_seconds_per_1000_requests", digits=4),
        "runs": [{k: r.get(k) for k in RUN_FIELDS} for r in runs],
    }


def cpu_figures(before, after, requests):
    """CPU seconds of one run and per 1000 requests, from two readings (None when either is missing)."""
    if before is None or after is None:
        return {}
    seconds = after - before
    return {"cpu_seconds": round(seconds, 3),
            "cpu_seconds_per_1000_requests": round(seconds * 1000.0 / requests, 4) if requests else None}


def round_order(paths, number):
    """The paths in round ``number`` (0-based): rotated one step a round, so none is always first."""
    shift = number % len(paths)
    return list(paths[shift:]) + list(paths[:shift])


def ratio(rate, direct_rate):
    return round(rate / direct_rate, 3) if rate is not None and direct_rate else None


def median_or_none(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def by_setting(rounds, key):
    """Medians of the rounds run with each value of ``key`` (access_log, variant), rounds without one left out."""
    labels = []
    for summary in rounds:
        if summary.get(key) and summary[key] not in labels:
            labels.append(summary[key])
    figures = {}
    for label in labels:
        these = [summary for summary in rounds if summary.get(key) == label]
        figures[label] = {"rounds": len(these)}
        for figure in ("ratio_proxy_to_direct", "ratio_nginx_to_direct", "proxy_p99_ms", "nginx_p99_ms",
                       "proxy_cpu_seconds_per_1000_requests", "proxy_dockerd_cpu_seconds_per_1000_requests",
                       "direct_dockerd_cpu_seconds_per_1000_requests"):
            values = [summary.get(figure) for summary in these]
            figures[label][figure] = (round(statistics.median([v for v in values if v is not None]), 4)
                                      if any(v is not None for v in values) else None)
    return figures


def measure(tool, args, targets, instance, cpu_readers, before_round=None):
    """Rounds over the paths in a rotating order, then the tool's ceiling once. ``cpu_readers``
    maps a proxy path to a function giving its container's CPU seconds so far; ``before_round(number)``,
    when given, sets up a round and returns what it set ({"access_log": ...} or {"variant": ...})."""
    paths = [name for name in PATHS if name in targets]

    def one(name):
        url = targets[name]
        read_cpu = cpu_readers.get(name)
        before = listen_overflows(instance)
        cpu_before = read_cpu() if read_cpu else None
        engine_before = process_cpu_seconds(ENGINE_PROCESS)
        if tool == "wrk":
            figures = run_wrk(url, args.connections, args.threads, args.duration)
        else:
            figures = run_python(url, args.connections, args.requests, args.max_seconds)
        cpu_after = read_cpu() if read_cpu else None
        engine_after = process_cpu_seconds(ENGINE_PROCESS)
        after = listen_overflows(instance)
        if before is not None and after is not None and name != "ceiling":
            figures["app_listen_overflows"] = after - before
        figures.update(cpu_figures(cpu_before, cpu_after, figures["requests"]))
        engine = cpu_figures(engine_before, engine_after, figures["requests"])
        figures["dockerd_cpu_seconds_per_1000_requests"] = engine.get("cpu_seconds_per_1000_requests")
        return figures

    runs = {name: [] for name in paths}
    rounds = []
    turns = max(1, len(args.access_log), len(args.variants))
    for number in range(args.rounds):
        setting = before_round(number) if before_round else {}
        this_round = {}
        # With settings taking turns, the order turns once they all had one: each sees every order.
        order = round_order(paths, number // turns)
        for name in order:
            this_round[name] = figures = one(name)
            runs[name].append(figures)
            log("%s %s round %d: %.0f req/s, p99 %s ms, failed %d, cpu %s s/1000 requests (dockerd %s), "
                "app accept-queue overflows %s" % (
                    tool, name, number + 1, figures["requests_per_second"] or 0, figures["p99_ms"], figures["failed"],
                    figures.get("cpu_seconds_per_1000_requests"), figures.get("dockerd_cpu_seconds_per_1000_requests"),
                    figures.get("app_listen_overflows")))
        direct_rate = this_round["direct"]["requests_per_second"]
        summary = {"round": number + 1, "order": order, "access_log": setting.get("access_log"),
                   "variant": setting.get("variant"), "direct_dockerd_cpu_seconds_per_1000_requests":
                       this_round["direct"].get("dockerd_cpu_seconds_per_1000_requests")}
        for name in PROXIES:
            if name in this_round:
                summary["ratio_%s_to_direct" % name] = ratio(this_round[name]["requests_per_second"], direct_rate)
                summary["%s_p99_ms" % name] = this_round[name]["p99_ms"]
                summary["%s_cpu_seconds_per_1000_requests" % name] = this_round[name].get("cpu_seconds_per_1000_requests")
                summary["%s_dockerd_cpu_seconds_per_1000_requests" % name] = this_round[name].get(
                    "dockerd_cpu_seconds_per_1000_requests")
        rounds.append(summary)
        log("%s round %d%s: %s" % (tool, number + 1, "".join(" (%s %s)" % item for item in setting.items()), "; ".join(
            "%s/direct %s, p99 %s ms, cpu %s s/1000 requests" % (
                PROXIES[name], summary["ratio_%s_to_direct" % name], summary["%s_p99_ms" % name],
                summary["%s_cpu_seconds_per_1000_requests" % name])
            for name in PROXIES if name in this_round)))
    ceiling = one("ceiling")
    log("%s ceiling (HAProxy answering itself): %.0f req/s, p99 %s ms" % (
        tool, ceiling["requests_per_second"] or 0, ceiling["p99_ms"]))
    result = {name: aggregate(runs[name]) for name in paths}
    result["ceiling_haproxy_self_answer"] = ceiling
    result["rounds"] = rounds
    for key in ("access_log", "variant"):
        if len({summary[key] for summary in rounds}) < 2:
            continue
        result["by_%s" % key] = by_setting(rounds, key)
        for label, figures in result["by_%s" % key].items():
            log("%s, %s %s (%d rounds): Flow's proxy/direct %s (p99 %s ms), nginx/direct %s (p99 %s ms), proxy cpu "
                "%s s/1000 requests, dockerd %s (direct: %s)" % (
                    tool, key.replace("_", " "), label, figures["rounds"], figures["ratio_proxy_to_direct"],
                    figures["proxy_p99_ms"], figures["ratio_nginx_to_direct"], figures["nginx_p99_ms"],
                    figures["proxy_cpu_seconds_per_1000_requests"],
                    figures["proxy_dockerd_cpu_seconds_per_1000_requests"],
                    figures["direct_dockerd_cpu_seconds_per_1000_requests"]))
    direct = result["direct"]
    for name in PROXIES:
        if name not in result:
            continue
        figures = result[name]
        # Ratio of the mean rates (the figure before the nginx peer came), and the median of the rounds' ratios.
        result["ratio_%s_to_direct" % name] = ratio(figures["requests_per_second"], direct["requests_per_second"])
        result["median_ratio_%s_to_direct" % name] = median_or_none(r["ratio_%s_to_direct" % name] for r in rounds)
        result["%s_p99_added_ms" % name] = round(figures["p99_ms"] - direct["p99_ms"], 2) \
            if figures.get("p99_ms") is not None and direct.get("p99_ms") is not None else None
    result["p99_added_ms"] = result.pop("proxy_p99_added_ms")
    return result


def tool_summary(tool, figures):
    """One tool's part of the summary line: direct, then each proxy's median round ratio, p99 and CPU."""
    direct = figures["direct"]
    parts = ["direct %.0f req/s p99 %s ms" % (direct["requests_per_second"] or 0, direct["p99_ms"])]
    for name, title in PROXIES.items():
        if name in figures:
            path = figures[name]
            parts.append("%s %.0f req/s p99 %s ms, ratio %s (rounds' median %s), cpu %s s/1000 req (dockerd %s)" % (
                title, path["requests_per_second"] or 0, path["p99_ms"], figures["ratio_%s_to_direct" % name],
                figures["median_ratio_%s_to_direct" % name], path["cpu_seconds_per_1000_requests"],
                path["dockerd_cpu_seconds_per_1000_requests"]))
    parts.append("tool ceiling %.0f req/s" % (figures["ceiling_haproxy_self_answer"]["requests_per_second"] or 0))
    return "%s: %s" % (tool, ", ".join(parts))


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    if not args.no_nginx and args.nginx_port in proxy.ports:
        parser.error("--nginx-port %d is one of --proxy-ports" % args.nginx_port)
    have_wrk = bool(shutil.which("wrk"))
    tools = {"auto": (["wrk"] if have_wrk else []) + ["python"], "wrk": ["wrk"], "python": ["python"]}[args.tool]
    report = {"benchmark": "proxy_overhead", "backend": args.backend, "goal_ratio": GOAL,
              "wrk_installed": have_wrk, "tools": tools, "nginx_peer": not args.no_nginx, "cpu_source": CPU_SOURCE}
    with Bench(proxy, keep=args.keep) as bench:
        peer = None
        if not args.no_nginx:
            peer = NginxPeer(bench, args.nginx_port)
            peer.check_image()
            if not port_free(args.nginx_port):
                raise BenchError("Port %d on 127.0.0.1 is in use; pick another with --nginx-port." % args.nginx_port)
        report["machine"] = machine_info(bench.docker, proxy.image)
        project = bench.project("po")
        log("setting up %s: deploy with scale 1, proxy on 127.0.0.1:%d" % (project.service, proxy.http_port))
        first = {"proxy_access_log": args.access_log[0]} if args.access_log else {}
        project.run(project.deploy(scale="1"), project.proxy(**first))
        report["access_log"] = args.access_log or "default"
        report["variants"] = {name: VARIANTS[name] for name in args.variants}
        before_round = None
        if len(args.access_log) > 1:
            def before_round(number):
                # Set between rounds, never while a path is measured: a flow_proxy run re-renders and reloads.
                value = args.access_log[number % len(args.access_log)]
                project.run(project.proxy(proxy_access_log=value))
                time.sleep(2)  # the old worker finishes its kept-alive connections
                return {"access_log": value}
        elif args.variants:
            node = proxy_node_for(bench, proxy)
            rendered = node.current_config()  # what flow_proxy rendered: every variant starts from it

            def before_round(number):
                variant = args.variants[number % len(args.variants)]
                # Every round, the baseline too, starts on a new worker: checked, installed and reloaded.
                generation = "bench-%s-%d" % (variant, number + 1)
                try:
                    node.activate(variant_config(rendered, variant, generation), generation)
                    # The old worker's CPU time would leave with it during the round.
                    module_utils("proxy_drain").wait_drained(node, 60)
                except Exception as error:  # the collection's FlowError, with HAProxy's own words
                    raise BenchError("variant %s: %s" % (variant, error))
                # What the new worker runs with (the threads it started, its buffer size), to see the variant took.
                info = dict(line.split(": ", 1) for line in node.runtime("show info").splitlines() if ": " in line)
                return {"variant": variant, "threads": info.get("Nbthread")}
        instances = project.instances()
        if len(instances) != 1:
            raise BenchError("expected 1 running instance, found %d" % len(instances))
        instance_port = project.instance_port(instances[0])
        targets = {
            "direct": "http://127.0.0.1:%d%s" % (instance_port, SERVICE_PATH),
            "proxy": proxy.url(),
            "ceiling": "http://127.0.0.1:%d/healthz" % proxy.stats_port,
        }
        flow_proxy = bench.docker.containers.get(proxy.name)
        cpu_readers = {"proxy": lambda: container_cpu_seconds(flow_proxy)}
        if peer is not None:
            # The peer logs the requests Flow's proxy logs (flow_proxy's default without --access-log), so both
            # pay the same for it; with several values taking turns, every request, as a stock nginx does.
            report["nginx_access_log"] = args.access_log[0] if len(args.access_log) == 1 else (
                "all" if args.access_log else module_utils("options").default("proxy_access_log"))
            peer.start([instance_port], access_log=report["nginx_access_log"])
            targets["nginx"] = peer.url()
            cpu_readers["nginx"] = lambda: container_cpu_seconds(peer.container)
            report["machine"]["nginx"] = peer.version()
            report["nginx_container"] = peer.name
        paths = [name for name in PATHS if name in targets]
        for name in paths:
            status, body = http_get(targets[name])
            if status != 200 or not isinstance(body, dict):
                raise BenchError("%s target %s answers %s %r" % (name, targets[name], status, body))
        for name, read_cpu in cpu_readers.items():
            if read_cpu() is None:
                log("cannot read the CPU time of %s's processes from /proc: no CPU figures for it" % PROXIES[name])
        report["targets"] = targets
        report["instance"] = instances[0].name
        # Warm every path (the proxies' server connections, the app's threads) before measuring.
        report["warm_up_failed"] = sum(
            run_load(targets[name], 500, connections=args.connections, max_seconds=10).failed for name in paths)
        started = time.monotonic()
        for tool in tools:
            report[tool] = measure(tool, args, targets, instances[0], cpu_readers, before_round)
        report["measure_seconds"] = round(time.monotonic() - started, 1)

    headline_tool = tools[0]
    headline = report[headline_tool]
    flow_ratio = headline["ratio_proxy_to_direct"]
    report["headline_tool"] = headline_tool
    report["goal_met"] = bool(flow_ratio is not None and flow_ratio >= GOAL)
    if peer is not None:
        flow_median, nginx_median = headline["median_ratio_proxy_to_direct"], headline["median_ratio_nginx_to_direct"]
        report["flow_at_least_nginx"] = bool(flow_median is not None and nginx_median is not None
                                             and flow_median >= nginx_median)
    report["failed"] = report["warm_up_failed"] + sum(
        report[tool][part]["failed"] for tool in tools for part in paths + ["ceiling_haproxy_self_answer"])
    line = "proxy_overhead (%d conns, 1 instance, rounds %d): %s: %s; goal proxy/direct >= %.1f %s (by %s)%s; failed %d" % (
        args.connections, args.rounds, "FAIL" if report["failed"] else "PASS",
        "; ".join(tool_summary(tool, report[tool]) for tool in tools), GOAL,
        "MET" if report["goal_met"] else "NOT MET", headline_tool,
        "" if peer is None else "; Flow's proxy >= nginx (rounds' median ratio): %s" % (
            "yes" if report["flow_at_least_nginx"] else "no"),
        report["failed"])
    emit(report, line)
    return 1 if report["failed"] else 0


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
