#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Proxy replacement benchmark: a load through the proxy on 127.0.0.1 while the proxy container is
replaced by one of another image, again and again (issue 14).

Deploys the service (blue, --scale instances) and routes it, tags the proxy's image a second time
(dockerflow-test/haproxy:bench-replacement: to Flow another proxy_image, to HAProxy the same program),
then runs two loads: --connections keep-alive connections and --fresh fresh-connection-per-request
workers (plus one more keep-alive load per --extra-url, e.g. the HTTPS frontend's
https://127.0.0.1:PORT/bench: --https-port PORT records a certificate of the bench's own CA so that the proxy
serves HTTPS there). While they run, the proxy image alternates --replacements times. It removes only its own
leftovers (its proxy, by name) before it starts: other sessions may be benchmarking on the same engine.

--way flow (the default): each replacement is one flow_proxy state=synced with the other proxy_image
(the new container takes the listening sockets over with haproxy -x, the old one soft-stops).
--way reuseport: the same steps by hand without -x (rename, a new container binding sockets of its own
beside the old ones through SO_REUSEPORT, SIGUSR1 to the old one, remove it): what the handover saves.

Prints a JSON report (requests and failures of each load, each replacement's seconds, its failures
in that window, and whether the new container runs the new image with no old one left) and a one-line
summary. Exit 1 when a request failed or a replacement did not happen, 2 when the benchmark could
not run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import docker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from https_zero_downtime import HttpsBench, HttpsBenchProxy, certificate_entry  # noqa: E402

from common import (  # noqa: E402
    BenchError,
    add_common_arguments,
    check_backend,
    consul,
    emit,
    http_get,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    port_free,
    proxy_from_args,
)
from loadgen import LoadGenerator, check_loopback  # noqa: E402
from support.pem import TestCA  # noqa: E402  (the in-memory test CA of the HTTPS tests)

OTHER_TAG = "dockerflow-test/haproxy:bench-replacement"
RETIRING = "-retiring-"  # proxy_replacement's name of an old container


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--way", choices=("flow", "reuseport"), default="flow",
                        help="flow: flow_proxy with the other proxy_image; reuseport: by hand, without -x")
    parser.add_argument("--replacements", type=int, default=6, help="proxy containers replaced, one after the other")
    parser.add_argument("--scale", type=int, default=2, help="instances of the service")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections of the load")
    parser.add_argument("--fresh", type=int, default=4, help="workers opening a connection per request")
    parser.add_argument("--extra-url", action="append", default=[], metavar="URL",
                        help="another http(s) URL on 127.0.0.1 to load with --connections keep-alive connections")
    parser.add_argument("--https-port", type=int, metavar="PORT",
                        help="the proxy also serves HTTPS on this loopback port, with a recorded certificate")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds of load between two replacements")
    parser.add_argument("--max-seconds", type=float, default=900, help="bound of each load")
    args = parser.parse_args()
    check_backend(parser, args)
    if args.replacements < 1 or args.scale < 1 or args.connections < 1 or args.fresh < 0:
        parser.error("--replacements, --scale and --connections must be 1 or more, --fresh 0 or more")
    for url in args.extra_url:
        try:
            check_loopback(url)
        except ValueError as error:
            parser.error("--extra-url: %s" % error)
    return parser, args


def proxy_containers(bench):
    """The bench proxy's containers: its own and any old one a replacement left."""
    name = bench.proxy.name
    return [c for c in bench.docker.containers.list(all=True, filters={"name": name}, ignore_removed=True)
            if c.name == name or c.name.startswith(name + RETIRING)]


def replace_by_flow(project, image):
    played = project.run(project.task("flow_proxy", state="synced", proxy_image=image), check=False)
    step = played.steps()[0]
    result = step["result"] or {}
    return {"seconds": step["seconds"], "replaced": result.get("proxy_replaced"), "problem": played.failure()}


def replace_by_hand(bench, image):
    """The replacement without the handover: the new container binds its own sockets (SO_REUSEPORT)."""
    client, name = bench.docker, bench.proxy.name
    started = time.monotonic()
    old = client.containers.get(name)
    old.rename("%s%s%s" % (name, RETIRING, old.id[:12]))
    new = client.containers.create(image, command=old.attrs["Config"]["Cmd"], name=name, user="0",
                                   network_mode="host", labels=old.labels,
                                   restart_policy=old.attrs["HostConfig"]["RestartPolicy"],
                                   mounts=[docker.types.Mount(target="/usr/local/etc/haproxy",
                                                              source=bench.proxy.volume, type="volume")])
    new.start()
    deadline = time.monotonic() + 30
    while b"Loading success." not in new.logs(stdout=False, stderr=True):
        if time.monotonic() > deadline:
            raise BenchError("the new proxy container did not start a worker: %s" % new.logs(tail=5))
        time.sleep(0.2)
    old.update(restart_policy={"Name": "no"})
    old.kill(signal="SIGUSR1")
    old.wait(timeout=60)
    old.remove()
    return {"seconds": round(time.monotonic() - started, 2), "replaced": ["by hand, without -x"], "problem": None}


def failures_between(results, start, end):
    return sum(1 for result in results for failure in result.failures_timeline if start <= failure["ended"] <= end + 1)


def run(parser, args):
    proxy = proxy_from_args(parser, args)
    setup = {}
    if args.https_port:
        if not port_free(args.https_port):
            raise BenchError("Port %d on 127.0.0.1 is in use; pick another with --https-port." % args.https_port)
        proxy = HttpsBenchProxy(*proxy.ports, https_port=args.https_port)
        setup["proxy_certificates"] = [certificate_entry(TestCA("dfbench-replace-ca"))]
    report = {"benchmark": "proxy_replace", "way": args.way, "https_port": args.https_port}
    with HttpsBench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        bench.docker.images.get(proxy.image).tag(OTHER_TAG)
        try:
            project = bench.project("pr")
            url = bench.url()
            log("setting up %s: deploy (blue, %d instances) and proxy, served at %s" % (project.service, args.scale, url))
            project.run(project.deploy(scale=str(args.scale)), project.proxy(**setup))
            status, body = http_get(url)
            if status != 200:
                raise BenchError("the proxy does not serve %s after the setup: %s %r" % (project.service, status, body))
            loads = {"keep_alive": LoadGenerator(url, connections=args.connections, max_seconds=args.max_seconds,
                                                 max_requests=10 ** 7)}
            if args.fresh:
                loads["fresh_connections"] = LoadGenerator(url, connections=args.fresh, fresh_connections=True,
                                                           max_seconds=args.max_seconds, max_requests=10 ** 7)
            for extra in args.extra_url:
                loads[extra] = LoadGenerator(extra, connections=args.connections, max_seconds=args.max_seconds,
                                             max_requests=10 ** 7)
            for load in loads.values():
                load.start()
            replacements = []
            try:
                time.sleep(args.pause)
                for number in range(1, args.replacements + 1):
                    image = OTHER_TAG if number % 2 else proxy.image
                    start = time.time()
                    entry = replace_by_flow(project, image) if args.way == "flow" else replace_by_hand(bench, image)
                    entry.update(number=number, image=image, start=start, end=time.time())
                    containers = proxy_containers(bench)
                    entry["runs_new_image"] = [c.attrs["Config"]["Image"] for c in containers] == [image]
                    entry["failed_in_window"] = failures_between([load.result for load in loads.values()],
                                                                 start, entry["end"])
                    replacements.append(entry)
                    log("replacement %d (%s): %.1fs, %d request(s) failed in its window, runs %s alone: %s%s" % (
                        number, image, entry["seconds"] or -1, entry["failed_in_window"], image,
                        entry["runs_new_image"], (": " + entry["problem"]) if entry["problem"] else ""))
                    time.sleep(args.pause)
            finally:
                results = {name: load.stop().summary() for name, load in loads.items()}
        finally:
            bench.docker.images.remove(OTHER_TAG, noprune=True)
            if setup:
                consul("DELETE", "/v1/kv/dockerflow/proxy/certificates/%s?recurse=true" % proxy.name)
    report["loads"] = results
    report["replacements"] = replacements
    seconds = [r["seconds"] for r in replacements if r["seconds"] is not None]
    report["replacement_seconds_median"] = round(statistics.median(seconds), 2) if seconds else None
    failed = sum(result["failed"] for result in results.values())
    missed = [r["number"] for r in replacements if r["problem"] or not r["runs_new_image"]]
    line = "proxy_replace (%s): %d replacement(s), median %.1fs; %s; %d failed%s" % (
        args.way, len(replacements), report["replacement_seconds_median"] or -1,
        ", ".join("%s %d requests, %d failed" % (name, r["requests"], r["failed"]) for name, r in results.items()),
        failed, ("; replacement(s) %s did not happen" % missed) if missed else "")
    emit(report, line)
    return 1 if failed or missed else 0


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
