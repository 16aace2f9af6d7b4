#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""HTTPS zero-downtime benchmark: an HTTPS load through the proxy on 127.0.0.1 (SNI, the bench's own CA
trusted) while the service is switched blue <-> green (flow_deploy force + flow_proxy + flow_stop_old per switch)
and the certificate is rotated (flow_proxy state=synced with proxy_certificates of a new certificate), in turns.

Half the connections open a new TLS connection for each request (a handshake each), half keep one connection
alive and open it again whenever the proxy closed it after an answer. Every handshake is counted by the
certificate the proxy served, so each rotation shows as the old certificate's handshakes ending and the new
one's starting.

Prints a JSON report (requests, failed requests, handshakes by certificate, p50/p99 latency, every step with
its duration and the failures while it ran) and a one-line summary. Exits 1 on a failed request, a failed step,
or a rotation after which the proxy does not serve the new certificate; 2 when it could not run.
"""

from __future__ import annotations

import os
import ssl
import statistics
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from https_load import HttpsLoad, certificate_id  # noqa: E402

from common import (  # noqa: E402
    Bench,
    BenchError,
    BenchProxy,
    add_common_arguments,
    consul,
    emit,
    log,
    machine_info,
    main_wrapper,
    parser_for,
    port_free,
    proxy_from_args,
)
from support.pem import TestCA  # noqa: E402  (the in-memory test CA of the HTTPS tests)

SERVER_NAME = "bench.dockerflow.test"
PATH = "/bench"


class HttpsBench(Bench):
    """A Bench that removes only its own leftovers (its proxy, by name) before it starts: other sessions may be
    running benchmarks (dfbench* projects) on this engine at the same time."""

    def remove_leftovers(self):
        self.cleanup(everything=False, quiet_if_none=True)


@dataclass
class HttpsBenchProxy(BenchProxy):
    https_port: int = 18184

    def params(self):
        return dict(super().params(), proxy_https_port=self.https_port)


def arguments():
    parser = parser_for(__doc__)
    add_common_arguments(parser)
    parser.add_argument("--https-port", type=int, default=18184, help="loopback port of the proxy's HTTPS frontend")
    parser.add_argument("--switches", type=int, default=4, help="blue<->green switches")
    parser.add_argument("--rotations", type=int, default=2, help="certificate rotations, after the switches in turn")
    parser.add_argument("--connections", type=int, default=8,
                        help="load threads: half a new TLS connection a request, half keep-alive")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="total requests a second over all connections (0: as fast as the answers come)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of load before, between and after steps")
    args = parser.parse_args()
    for name in ("switches", "rotations", "connections"):
        if getattr(args, name) < 0 or (name == "connections" and args.connections < 2):
            parser.error("--%s is too small" % name)
    return parser, args


def certificate_entry(ca):
    cert, key = ca.issue(SERVER_NAME)
    return {"name": "default", "cert": cert, "key": key}


def plan(switches, rotations):
    """The steps in turn: switch, rotation, switch, ... then what is left of either."""
    steps = []
    for index in range(max(switches, rotations)):
        steps += (["switch"] if index < switches else []) + (["rotation"] if index < rotations else [])
    return steps


def run_step(project, kind, ca):
    if kind == "switch":
        project.set_image(project.next_image())
        played = project.run(project.deploy(force=True), project.proxy(), project.stop_old(), check=False)
        return played, None
    entry = certificate_entry(ca)
    played = project.run(project.task("flow_proxy", state="synced", proxy_certificates=[entry]), check=False)
    return played, certificate_id(ssl.PEM_cert_to_DER_cert(entry["cert"]))


def run(parser, args):
    base = proxy_from_args(parser, args)
    proxy = HttpsBenchProxy(*base.ports, https_port=args.https_port)
    if not port_free(args.https_port):
        raise BenchError("Port %d on 127.0.0.1 is in use; pick another with --https-port." % args.https_port)
    ca = TestCA("dfbench-https-ca")
    report = {"benchmark": "https_zero_downtime", "backend": "container"}
    started = time.monotonic()
    certificates_key = "/v1/kv/dockerflow/proxy/certificates/%s?recurse=true" % proxy.name
    with HttpsBench(proxy, keep=args.keep) as bench:
        report["machine"] = machine_info(bench.docker, proxy.image)
        project = bench.project("hz")
        first = certificate_entry(ca)
        try:
            log("setting up %s: deploy and proxy with a certificate, HTTPS on 127.0.0.1:%d"
                % (project.service, args.https_port))
            project.run(project.deploy(), project.proxy(proxy_certificates=[first]))
            pause = args.connections / args.rate if args.rate else 0.0
            loads = [HttpsLoad(args.https_port, SERVER_NAME, ca.cert, PATH, fresh=index % 2 == 0, pause=pause)
                     for index in range(args.connections)]
            for load in loads:
                load.start()
            time.sleep(args.settle)
            steps, problems = [], []
            for number, kind in enumerate(plan(args.switches, args.rotations), 1):
                failed_before = sum(load.failed for load in loads)
                step_started = time.time()
                played, new_certificate = run_step(project, kind, ca)
                time.sleep(args.settle)
                entry = {"step": number, "kind": kind, "seconds": round(played.seconds, 2),
                         "problem": played.failure(), "failed_during": sum(load.failed for load in loads) - failed_before,
                         "start": step_started}
                if new_certificate:
                    entry["certificate"] = new_certificate
                    entry["new_certificate_handshakes"] = sum(load.handshakes.get(new_certificate, 0) for load in loads)
                    if not entry["new_certificate_handshakes"]:
                        problems.append("step %d: the new certificate is not served" % number)
                if entry["problem"]:
                    problems.append("step %d (%s): %s" % (number, kind, entry["problem"]))
                steps.append(entry)
                log("step %d %s in %.1fs: %d failed during it%s" % (
                    number, kind, played.seconds, entry["failed_during"],
                    "; new certificate served in %d handshakes" % entry["new_certificate_handshakes"]
                    if new_certificate else ""))
                if entry["problem"]:
                    break
        finally:
            for load in locals().get("loads", []):
                load.finish()
            consul("DELETE", certificates_key)
    requests = sum(load.ok + load.failed for load in loads)
    failed = sum(load.failed for load in loads)
    handshakes = {}
    for load in loads:
        for served, count in load.handshakes.items():
            handshakes[served] = handshakes.get(served, 0) + count
    latencies = sorted(value for load in loads for value in load.latencies_ms)
    if failed:
        problems.insert(0, "%d failed request(s)" % failed)
    seconds = round(time.monotonic() - started, 1)
    report.update({
        "load": {"connections": args.connections, "rate_asked": args.rate or None,
                 "fresh_tls_connections": (args.connections + 1) // 2,
                 "keep_alive_connections": args.connections // 2, "requests": requests, "failed": failed,
                 "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                 "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None},
        "handshakes": sum(handshakes.values()),
        "handshakes_by_certificate": handshakes,
        "steps": steps,
        "failures": [error for load in loads for error in load.errors][:50],
        "run_seconds": seconds,
        "problems": problems,
    })
    switches = [s["seconds"] for s in steps if s["kind"] == "switch"]
    rotations = [s["seconds"] for s in steps if s["kind"] == "rotation"]
    line = ("https_zero_downtime: %s: %d switch(es), %d rotation(s), %d requests (%d conns, half fresh TLS, %s req/s "
            "asked), failed %d; "
            "%d TLS handshakes over %d certificates; p50 %s ms, p99 %s ms; switch median %ss, rotation median %ss" % (
                "FAIL" if problems else "PASS", len(switches), len(rotations), requests, args.connections,
                "%g" % args.rate if args.rate else "max", failed,
                report["handshakes"], len(handshakes), report["load"]["p50_ms"], report["load"]["p99_ms"],
                round(statistics.median(switches), 1) if switches else None,
                round(statistics.median(rotations), 1) if rotations else None))
    for note in problems:
        line += "; " + note
    emit(report, line)
    return 1 if problems else 0


def main():
    parser, args = arguments()
    return main_wrapper(lambda: run(parser, args))


if __name__ == "__main__":
    sys.exit(main())
