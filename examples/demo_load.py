#!/usr/bin/env python3
"""Bounded background load for the demo: GETs through the demo proxy on 127.0.0.1 until a stop
file appears (or the request / time budget runs out), then one JSON line with what was served.

playbooks/demo.yml starts it with ``async`` before the green deploy and touches the stop file
after the switch. The load generator is benchmarks/loadgen.py (imported, loopback targets only).

    demo_load.py --url http://127.0.0.1:18080/api/v1/books --stop-file /tmp/x/stop [--rate 40]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from loadgen import LoadGenerator  # noqa: E402  (benchmarks/ is not a package)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/PATH (loopback only)")
    parser.add_argument("--stop-file", required=True, help="stop when this file exists")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=40.0, help="requests a second, all connections together")
    parser.add_argument("--max-seconds", type=float, default=240.0)
    parser.add_argument("--max-requests", type=int, default=20000)
    args = parser.parse_args(argv)

    generator = LoadGenerator(args.url, connections=args.connections, rate=args.rate,
                              max_requests=args.max_requests, max_seconds=args.max_seconds).start()
    while generator.running() and not os.path.exists(args.stop_file):
        time.sleep(0.2)
    summary = generator.stop().summary(failures=5)
    print(json.dumps({key: summary[key] for key in (
        "requests", "failed", "statuses", "errors", "by_color", "by_version", "seconds", "requests_per_second",
        "p50_ms", "p99_ms", "max_ms", "first_failures")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
