#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Run one flow module in this process, as AnsiballZ would run it, and count where its time goes.

    profile_module.py MODULE ARGS_JSON OUT_JSON [--cprofile]

``ARGS_JSON`` holds the module's parameters (a dict). The module runs from the collection on
``PYTHONPATH`` (``.build/collections``) with every Docker API call (``docker.APIClient``), every
``docker exec`` into the proxy (``ProxyNode.exec``, by the command it runs), every command sent to
HAProxy's runtime API or master CLI over the module's own connection (``proxy_cli.ask``), every HTTP request to
Consul and every ``time.sleep`` timed. ``OUT_JSON`` gets the breakdown and the module's result.
The report also has the process's CPU time; with ``--cprofile``, the functions with the most own CPU time
(cProfile). What module_profile.py and switch_latency.py call per step; not meant to be run by hand, though it
can be.
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import io
import json
import pstats
import re
import sys
import threading
import time
from collections import defaultdict

STARTED = time.perf_counter()
_REAL_SLEEP = time.sleep
_MAIN = threading.main_thread()


class Tally:
    """count and seconds per kind; only the module's own (main) thread counts, not the lock renewal."""

    def __init__(self):
        self.count = defaultdict(int)
        self.seconds = defaultdict(float)

    def add(self, kind, seconds):
        if threading.current_thread() is _MAIN:
            self.count[kind] += 1
            self.seconds[kind] += seconds

    def report(self):
        kinds = sorted(self.count, key=lambda kind: -self.seconds[kind])
        return {
            "count": sum(self.count.values()),
            "seconds": round(sum(self.seconds.values()), 3),
            "by_kind": {kind: {"count": self.count[kind], "seconds": round(self.seconds[kind], 3)} for kind in kinds},
        }


DOCKER, EXECS, CLI, CONSUL, SLEEPS = Tally(), Tally(), Tally(), Tally(), Tally()
_depth = threading.local()


def _timed(tally, kind, function, *args, **kwargs):
    began = time.perf_counter()
    try:
        return function(*args, **kwargs)
    finally:
        tally.add(kind, time.perf_counter() - began)


def _docker_method(name, function):
    """Only the outermost APIClient call counts (the client's methods call each other)."""

    def wrapper(*args, **kwargs):
        if getattr(_depth, "docker", 0):
            return function(*args, **kwargs)
        _depth.docker = 1
        try:
            return _timed(DOCKER, name, function, *args, **kwargs)
        finally:
            _depth.docker = 0

    return wrapper


def _cli_kind(port, command):
    """'cli 9999 show stat': a runtime API or master CLI command, by port and first two words."""
    return "cli %s %s" % (port, " ".join(command.split()[:2]))


def _exec_kind(command):
    """'cli PORT show stat' (the helper script), 'haproxy -c', 'mv', 'reload script', ..."""
    text = " ".join(command)
    if "dockerflow-cli.sh" in text:
        return _cli_kind(command[2], command[3])
    if "dockerflow-reload.sh" in text:
        return "reload script"
    return " ".join(command[:2])


def _consul_kind(request):
    path = re.sub(r"^https?://[^/]+", "", request.url)
    base, _q, query = path.partition("?")
    parts = base.split("/")
    kind = "/".join(parts[:4])  # /v1/kv/dockerflow, /v1/health/service, /v1/session/create ...
    if "index=" in query:
        kind += " (blocking)"
    return "%s %s" % (request.method, kind)


def install():
    import docker.api.client
    import requests

    api = docker.api.client.APIClient
    transport = ("get", "post", "put", "delete", "mount", "close")  # requests.Session's, not Docker API calls
    for name in dir(api):
        if not name.startswith("_") and callable(getattr(api, name)) and name not in transport:
            setattr(api, name, _docker_method(name, getattr(api, name)))
    send = requests.Session.send

    def consul_send(self, request, **kwargs):
        if request.url.startswith("http+docker") or "/exec/" in request.url or "/containers/" in request.url:
            return send(self, request, **kwargs)
        return _timed(CONSUL, _consul_kind(request), send, self, request, **kwargs)

    requests.Session.send = consul_send

    def sleep(seconds):
        _timed(SLEEPS, "%.2fs" % seconds, _REAL_SLEEP, seconds)

    time.sleep = sleep


def install_proxy_exec():
    from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_cli, proxy_node

    execute = proxy_node.ProxyNode.exec
    ask = proxy_cli.ask

    def exec_(self, command):
        return _timed(EXECS, _exec_kind(command), execute, self, command)

    def ask_(host, port, command, *args, **kwargs):
        return _timed(CLI, _cli_kind(port, command), ask, host, port, command, *args, **kwargs)

    proxy_node.ProxyNode.exec = exec_
    proxy_cli.ask = ask_


def top_functions(profiler, count=15):
    """The ``count`` functions with the most own time, as file:line(name) and seconds (own, with callees)."""
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:count]  # (file, line, name): (cc, nc, tt, ct, _)
    return [{"function": "%s:%d(%s)" % (path.rsplit("/", 1)[-1], line, name), "calls": nc, "own_s": round(tt, 3),
             "with_callees_s": round(ct, 3)} for (path, line, name), (_cc, nc, tt, ct, _callers) in rows]


def main(module, args_path, out_path, *flags):
    with open(args_path) as handle:
        params = json.load(handle)
    install()
    began = time.perf_counter()
    loaded = importlib.import_module("ansible_collections.dockerflow.flow.plugins.modules.%s" % module)
    from ansible.module_utils import basic

    install_proxy_exec()
    imports = time.perf_counter() - began
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": params}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    output = io.StringIO()
    profiler = cProfile.Profile() if "--cprofile" in flags else None
    ran, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(output):
        try:
            if profiler:
                profiler.runcall(loaded.main)
            else:
                loaded.main()
        except SystemExit:
            pass
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    try:
        result = json.loads(output.getvalue())
    except ValueError:
        result = {"failed": True, "msg": output.getvalue()[-2000:]}
    report = {
        "module": module,
        "process_s": round(ended - STARTED, 3),  # from this script's first line: interpreter start-up excluded
        "imports_s": round(imports, 3),
        "run_s": round(ended - ran, 3),
        "run_cpu_s": round(cpu, 3),  # this process's own CPU (every thread), not the proxy's or Consul's
        "docker_api": DOCKER.report(),
        "proxy_execs": EXECS.report(),
        "proxy_cli": CLI.report(),
        "consul": CONSUL.report(),
        "sleeps": SLEEPS.report(),
        "result": {key: result.get(key)
                   for key in ("changed", "failed", "msg", "steps", "color", "live_color", "timings")},
    }
    if profiler:
        report["top_functions"] = top_functions(profiler)
    with open(out_path, "w") as handle:
        json.dump(report, handle, indent=1)
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1].startswith("-") or not set(sys.argv[4:]) <= {"--cprofile"}:
        print("usage: profile_module.py MODULE ARGS_JSON OUT_JSON [--cprofile]", file=sys.stderr)
        sys.exit(2)  # could not run, as the other benchmarks say it; 1 is the module's failure
    sys.exit(main(*sys.argv[1:]))
