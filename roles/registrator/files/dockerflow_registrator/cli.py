# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command line: ``python3 -m dockerflow_registrator --ip ADDRESS [...]`` (``--help``)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
from collections.abc import Sequence

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

from .attributes import split_tags
from .consul_agent import ConsulAgent
from .daemon import DEFAULT_RESYNC, Registrator, log
from .docker_engine import DockerAPI
from .settings import DEFAULT_CHECK_INTERVAL, Settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dockerflow-registrator",
        description="Register the published ports of this engine's containers in the local Consul agent.",
    )
    parser.add_argument("--consul", default=os.environ.get("CONSUL_HTTP_ADDR") or "http://127.0.0.1:8500",
                        help="Consul agent address, http(s)://HOST:PORT (default: $CONSUL_HTTP_ADDR or "
                             "http://127.0.0.1:8500); the ACL token comes from $CONSUL_HTTP_TOKEN")
    parser.add_argument("--ip", required=True,
                        help="address registered for ports published on all addresses (this host's address)")
    parser.add_argument("--docker", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                        help="engine address (default: $DOCKER_HOST or unix:///var/run/docker.sock)")
    parser.add_argument("--node", default=socket.gethostname(),
                        help="name of this registrator in service IDs and in the entries' meta (default: hostname)")
    parser.add_argument("--tags", default="", help="comma-separated tags added to every service")
    parser.add_argument("--explicit", action="store_true", help="register only ports with SERVICE_NAME set")
    parser.add_argument("--require-label", default=None, metavar="KEY[=VALUE]",
                        help="register only containers that have this label")
    parser.add_argument("--check-interval", default=DEFAULT_CHECK_INTERVAL,
                        help="check interval when SERVICE_CHECK_INTERVAL is not set (default: 10s)")
    parser.add_argument("--resync", type=int, default=DEFAULT_RESYNC,
                        help="seconds between full resyncs (default: 30; at least 1)")
    parser.add_argument("--once", action="store_true", help="resync once and exit")
    args = parser.parse_args(argv)
    if args.resync < 1:
        parser.error("--resync must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 stopped by a signal or one resync done (``--once``), 1 that resync failed,
    2 an argument the daemon cannot use."""
    args = parse_args(argv)
    try:
        settings = Settings(node=args.node, ip=args.ip, tags=tuple(split_tags(args.tags)), explicit=args.explicit,
                            require_label=args.require_label or None, check_interval=args.check_interval)
        consul = ConsulAgent(args.consul, token=os.environ.get("CONSUL_HTTP_TOKEN"))
        docker = DockerAPI(args.docker)
    except FlowError as exc:
        log("error: %s" % exc)
        return 2
    daemon = Registrator(docker, consul, settings, resync_interval=args.resync)
    log("starting: node %s, ip %s, Consul %s, engine %s" % (settings.node, settings.ip, consul.address, docker.url))
    if args.once:
        return _resync_once(daemon)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log("signal %d: stopping" % signum)
        stop.set()
        daemon.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.run(stop)
    return 0


def _resync_once(daemon: Registrator) -> int:
    try:
        summary = daemon.resync()
    except FlowError as exc:
        log("error: %s" % exc)
        return 1
    log("resync: %(containers)d running containers, %(registrations)d registrations "
        "(%(registered)d registered, %(removed)d removed) in %(seconds).3fs" % summary)
    return 0
