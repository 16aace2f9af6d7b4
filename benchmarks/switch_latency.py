#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Switch latency benchmark: how long from the start of a flow_proxy task until
every request through the proxy is served by the new color, and how proxy
reconfiguration time grows with the number of routed services (1, 50, 200).

For each route count N the run records N-1 extra routed services straight into
Consul KV (copies of the real service's state document under
``dockerflow/services/<name>``, with their own path, no instances), lets the proxy
render them (flow_proxy state=synced, timed), times ``haproxy -c`` and the
master-worker reload of that configuration with the module's own ProxyNode code
(the module reports its steps without timings), deploys the next color of the
real service and times one flow_proxy switch while a poller asks the proxy every
~20 ms on a fresh connection which color answers. Finally a no-op flow_proxy
(already routed) gives the fixed cost of the module with N routes. With ``--profile``, one more switch a
route count, and the no-op, run in a process of their own (profile_module.py, with cProfile): where their time
went, apart from Ansible's.

Prints a JSON report and a table. Exit 1 when a poll failed during a switch or an
old-color answer came after flow_proxy returned, 2 when the benchmark could not run.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    COLLECTIONS,
    KV_SERVICES,
    PROFILE_KINDS,
    Bench,
    BenchError,
    add_common_arguments,
    check_backend,
    consul,
    consul_kv_put,
    emit,
    http_get,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    profiled,
    proxy_from_args,
    proxy_node_for,
)
from loadgen import check_loopback  # noqa: E402

MAX_ROUTES = 1000


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--routes", default="1,50,200", help="routed-service counts to measure, ascending")
    parser.add_argument("--poll-interval", type=float, default=0.02, help="seconds between two polls")
    parser.add_argument("--repeats", type=int, default=2, help="switches measured per route count (median kept)")
    parser.add_argument("--profile", action="store_true",
                        help="one more switch a route count, profiled (Docker, proxy, Consul, sleeps, Python CPU)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to keep polling after flow_proxy returned")
    parser.add_argument("--max-servers", type=int,
                        help="proxy_max_servers of the proxy (default: the module's, 32): every route has two colors "
                             "of that many server slots, and HAProxy needs a file descriptor a slot")
    parser.add_argument("--nofile", type=int,
                        help="proxy_nofile of the proxy (default: none, the engine's limit): 1,000 routes at 32 slots "
                             "need about 64,300 file descriptors")
    args = parser.parse_args()
    check_backend(parser, args)
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    try:
        args.route_counts = [int(n) for n in args.routes.split(",")]
    except ValueError:
        parser.error("--routes takes counts like 1,50,200")
    if not args.route_counts or args.route_counts != sorted(set(args.route_counts)) or args.route_counts[0] < 1:
        parser.error("--routes takes distinct ascending counts of 1 or more, like 1,50,200")
    # Issue 15's goal is a flat switch cost up to 1,000 routes.
    if args.route_counts[-1] > MAX_ROUTES:
        parser.error("--routes: at most %d routed services" % MAX_ROUTES)
    return parser, args


class Poller(threading.Thread):
    """GET ``url`` on a fresh connection every ``interval`` seconds; records (epoch seconds answered, color or failure)."""

    def __init__(self, url, interval=0.02, timeout=2.0):
        super().__init__(daemon=True)
        parsed = check_loopback(url)
        self.host, self.port, self.path = parsed.hostname, parsed.port, parsed.path or "/"
        self.interval = interval
        self.timeout = timeout
        self.samples = []
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            began = time.monotonic()
            color, failure = None, None
            try:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                try:
                    connection.request("GET", self.path, headers={"Connection": "close"})
                    response = connection.getresponse()
                    body = response.read()
                finally:
                    connection.close()
                if response.status == 200:
                    try:
                        color = json.loads(body).get("color")
                    except (ValueError, AttributeError):
                        failure = "200 without a color"
                else:
                    failure = "HTTP %d" % response.status
            except (OSError, http.client.HTTPException) as exc:
                failure = "%s: %s" % (exc.__class__.__name__, exc)
            self.samples.append((time.time(), color, failure))
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self):
        self._stop_event.set()
        self.join()
        return self.samples


def analyse(samples, start, end, old, new):
    """Seconds after ``start`` (flow_proxy began) of the first new and the last old answer."""
    old_times = [t for t, color, _failure in samples if color == old]
    new_times = [t for t, color, _failure in samples if color == new and t >= start]
    failures = [(round(t - start, 3), failure) for t, _color, failure in samples if failure]
    last_old = max(old_times) if old_times else None
    after_last_old = [t for t in new_times if last_old is None or t > last_old]
    return {
        "polls": len(samples),
        "first_new_s": round(min(new_times) - start, 3) if new_times else None,
        "last_old_s": round(last_old - start, 3) if last_old is not None else None,
        "all_new_from_s": round(min(after_last_old) - start, 3) if after_last_old else None,
        "module_s": round(end - start, 3),
        "old_after_module_end": sum(1 for t in old_times if t > end),
        "failed_polls": len(failures),
        "failures": failures[:10],
    }


# -- the module's own proxy code, for the haproxy -c / reload timings ------------------------
def proxy_code():
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.dockerflow.flow.plugins.module_utils import haproxy_config, proxy_files, proxy_node, proxy_routes
    from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import empty_state
    return haproxy_config, proxy_routes, proxy_node, proxy_files, empty_state


def read_documents(empty_state):
    """Every service document in Consul, as StateStore.read_all gives them to flow_proxy."""
    entries = consul("GET", "/v1/kv/%s?recurse" % KV_SERVICES) or []
    documents = {}
    for entry in entries:
        service = entry["Key"].rsplit("/", 1)[-1]
        document = empty_state(service)
        document.update(json.loads(base64.b64decode(entry["Value"] or b"") or b"{}"))
        documents[service] = document
    return documents


def time_reconfiguration(bench, proxy, label, service, color):
    """haproxy -c and the reload of the current routes, step by step, with ProxyNode (what flow_proxy runs)."""
    haproxy_config, proxy_routes, _proxy_node, proxy_files, empty_state = proxy_code()
    node = proxy_node_for(bench, proxy)
    settings = node.settings
    documents = read_documents(empty_state)
    routes = proxy_routes.routes_from_documents(documents, proxy.name)  # routes recorded for this proxy only
    config, generation = haproxy_config.render(routes, settings, generation="bench-%s" % label)
    timings = {"routes": len(routes), "backends": sum(len(r.backend_colors) for r in routes),
               "config_kb": round(len(config) / 1024.0, 1)}

    def timed(name, function, *args):
        began = time.monotonic()
        value = function(*args)
        timings[name] = round(time.monotonic() - began, 3)
        return value

    timed("docker_exec_true_s", node.exec, ["true"])
    timed("put_config_s", node.put_files, {"haproxy.cfg.new": config})
    code, output = timed("haproxy_c_s", node.exec, ["haproxy", "-c", "-f", proxy_files.CANDIDATE_FILE])
    if code != 0:
        raise BenchError("haproxy -c rejected the rendered configuration: %s" % output[-300:])
    timed("install_s", node.exec, ["bash", proxy_files.RELOAD_SCRIPT, str(settings.admin_port), settings.server_state_file,
                                   node.admin_host, "place"])  # haproxy.cfg and the live colors' map (live_map)
    code, output = timed("reload_signal_s", node.exec,
                         ["bash", proxy_files.RELOAD_SCRIPT, str(settings.admin_port), settings.server_state_file])
    if code != 0:
        raise BenchError("the reload script failed: %s" % output[-300:])
    began = time.monotonic()
    if not node.reports_generation(generation, 60):
        raise BenchError("the new worker did not load generation %s within 60s" % generation)
    timings["new_worker_running_s"] = round(time.monotonic() - began, 3)
    timings["reload_total_s"] = round(timings["reload_signal_s"] + timings["new_worker_running_s"], 3)
    # What HAProxy made of the container's nofile limit with these servers, and the new worker's memory.
    info = dict(line.split(": ", 1) for line in node.runtime("show info").splitlines() if ": " in line)
    timings.update({key.lower().replace("-", "_"): int(info[key]) for key in ("Ulimit-n", "Maxsock", "Maxconn")
                    if key in info})
    _code, status = node.exec(["grep", "VmRSS", "/proc/%s/status" % info.get("Pid", "self")])
    timings["worker_rss_mb"] = round(int(status.split()[1]) / 1024.0, 1) if "VmRSS" in status else None
    # What a switch also pays per call, growing with the routes: the runtime API's "show backend"
    # (polled every 0.2s until the new generation shows) and "show stat" (read until the target's servers are UP).
    stat = timed("show_stat_s", node.runtime, "show stat")
    timings["show_stat_kb"] = round(len(stat) / 1024.0, 1)
    timed("show_backend_s", node.runtime, "show backend")
    # The module's own call, polled by wait_servers_up before and after the switch: show stat, parsed.
    timed("servers_up_call_s", node.servers_up, haproxy_config.backend_name(service, color))
    return timings


def extra_documents(real, project, first, last):
    """State documents for routed services first..last: the real service's document, renamed and re-pathed."""
    documents = {}
    for number in range(first, last + 1):
        name = "%s-x%03d" % (project.name, number)
        document = copy.deepcopy(real)
        document["service"] = name
        document["project"] = name
        document["routes"] = dict(real["routes"], paths=["/bench-x%03d" % number])
        documents[name] = document
    return documents


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def measure_switch(project, proxy, args):
    """Deploy the next color (not timed), then time one flow_proxy switch while polling the proxy."""
    old = (project.state() or {}).get("live_color")
    project.set_image(project.next_image())
    deployed = project.run(project.deploy(force=True))
    new = deployed.results[0].get("color")
    poller = Poller(proxy.url(), interval=args.poll_interval)
    poller.start()
    time.sleep(0.3)
    try:
        switched = project.run(project.proxy(), check=False)
        time.sleep(args.settle)
    finally:
        samples = poller.stop()
    if switched.failure():
        raise BenchError("switch %s -> %s: %s" % (old, new, switched.failure()))
    step = switched.step(0)
    switch = analyse(samples, step["start"], step["end"], old, new)
    switch.update({"from": old, "to": new, "deploy_s": deployed.step(0)["seconds"],
                   "module_steps": (step["result"] or {}).get("steps")})
    return switch


def profile_switch(project):
    """Deploy the next color (not timed), then one flow_proxy switch run by profile_module.py: the totals of its
    kinds of waits, and the functions with the most own CPU time."""
    project.set_image(project.next_image())
    project.run(project.deploy(force=True))
    report = profiled(project, project.proxy(), cprofile=True)
    return {"process_s": report["process_s"], "imports_s": report["imports_s"], "run_s": report["run_s"],
            "run_cpu_s": report["run_cpu_s"], **{kind: report[kind] for kind in PROFILE_KINDS},
            "top_functions": report["top_functions"]}


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    proxy.max_servers, proxy.nofile = args.max_servers, args.nofile
    report = {"benchmark": "switch_latency", "backend": args.backend, "poll_interval_s": args.poll_interval,
              "max_servers": args.max_servers or "default", "nofile": args.nofile or "the engine's"}
    rows = []
    problems = []
    with Bench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        project = bench.project("sl")
        log("setting up %s: deploy (blue), proxy on 127.0.0.1:%d" % (project.service, proxy.http_port))
        setup = project.run(("ansible.builtin.ping", {}), project.deploy(), project.proxy())
        report["setup_seconds"] = setup.durations()
        report["ansible_task_baseline_s"] = setup.step(0)["seconds"]
        status, body = http_get(proxy.url())
        if status != 200 or not isinstance(body, dict):
            raise BenchError("the proxy does not serve %s: %s %r" % (project.service, status, body))
        real = project.state()
        written = 1
        for count in args.route_counts:
            row = {"routes": count}
            if count > written:
                extras = extra_documents(real, project, written, count - 1)
                began = time.monotonic()
                for name, document in extras.items():
                    key = KV_SERVICES + name
                    bench.kv_keys.append(key)
                    consul_kv_put(key, document)
                row["kv_write_s"] = round(time.monotonic() - began, 2)
                written = count
                synced = project.run(project.proxy(state="synced"))
                row["synced_module_s"] = synced.step(0)["seconds"]
                log("%d routes: flow_proxy state=synced took %.2fs" % (count, row["synced_module_s"]))
            live = (project.state() or {}).get("live_color")
            row.update(time_reconfiguration(bench, proxy, "n%d" % count, project.service, live))
            log("%d routes: haproxy -c %.3fs, reload until the new worker runs %.3fs (config %s KB; Maxconn %s, "
                "Ulimit-n %s, worker RSS %s MB)" % (count, row["haproxy_c_s"], row["reload_total_s"], row["config_kb"],
                                                    row.get("maxconn"), row.get("ulimit_n"), row["worker_rss_mb"]))

            row["switches"] = []
            for _repeat in range(args.repeats):
                switch = measure_switch(project, proxy, args)
                row["switches"].append(switch)
                log("%d routes: switch %s -> %s: module %.2fs, first %s answer at %ss, last %s answer at %ss, "
                    "%d polls, %d failed" % (
                        count, switch["from"], switch["to"], switch["module_s"], switch["to"], switch["first_new_s"],
                        switch["from"], switch["last_old_s"], switch["polls"], switch["failed_polls"]))
                if switch["failed_polls"] or switch["old_after_module_end"]:
                    problems.append("%d routes: %d failed poll(s), %d old answer(s) after flow_proxy returned" % (
                        count, switch["failed_polls"], switch["old_after_module_end"]))
            row["switch"] = {key: _median([sw[key] for sw in row["switches"]])
                             for key in ("module_s", "first_new_s", "last_old_s", "all_new_from_s", "deploy_s")}
            if args.profile:
                row["profile"] = profile_switch(project)
                log("%d routes: profiled switch: run %.2fs (CPU %.2fs): %s" % (
                    count, row["profile"]["run_s"], row["profile"]["run_cpu_s"], ", ".join(
                        "%s %.2fs" % (kind, row["profile"][kind]["seconds"])
                        for kind in PROFILE_KINDS)))
            noop = project.run(project.proxy())
            row["noop_module_s"] = noop.step(0)["seconds"]
            row["noop_changed"] = noop.results[0].get("changed")
            if args.profile:  # the same no-op in a process of its own: what grows with the routes
                report_noop = profiled(project, project.proxy(), cprofile=True)
                row["noop_profile"] = {key: report_noop[key] for key in ("process_s", "imports_s", "run_s", "run_cpu_s")}
                row["noop_profile"].update({kind: report_noop[kind]["seconds"] for kind in PROFILE_KINDS})
                row["noop_profile"]["top_functions"] = report_noop["top_functions"][:8]
            rows.append(row)

    report["rows"] = rows
    report["problems"] = problems
    header = ("routes", "synced s", "switch s", "first new s", "100% new s", "no-op s", "switch - no-op s",
              "haproxy -c s", "reload s", "servers_up s", "stat KB", "config KB")
    table = [" | ".join(header), " | ".join("---" for _column in header)]
    for row in rows:
        switch = row["switch"]
        table.append(" | ".join(str(v) for v in (
            row["routes"], row.get("synced_module_s", "-"), switch["module_s"], switch["first_new_s"],
            switch["all_new_from_s"], row["noop_module_s"], round(switch["module_s"] - row["noop_module_s"], 2),
            row["haproxy_c_s"], row["reload_total_s"], row["servers_up_call_s"], row["show_stat_kb"],
            row["config_kb"])))
    report["table"] = table
    emit(report, "\n".join(table))
    first = rows[0]["switch"] if rows else {}
    print("switch_latency: %s: one service switched in %ss (flow_proxy), 100%% new color %ss after it started; "
          "switch with %s routes: %s" % (
              "OK" if not problems else "PROBLEMS (%s)" % "; ".join(problems), first.get("module_s"),
              first.get("all_new_from_s"), "/".join(str(r["routes"]) for r in rows),
              "/".join("%ss" % r["switch"]["module_s"] for r in rows)))
    return 0 if not problems else 1


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
