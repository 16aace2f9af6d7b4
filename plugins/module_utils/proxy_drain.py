# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draining: the requests the proxy still sends to an old release finish before stop-old stops it.

After a reload, the workers from before it finish theirs and leave (the master's ``show proc`` lists them). After
a switch of the live colors' map (live_map), one worker serves both colors: there the old colors' backends' current
sessions (``scur``) say what is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import workers

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode


def old_workers(node: ProxyNode) -> list[str]:
    """PIDs of workers still finishing requests from before a reload."""
    return workers(node.master("show proc"))[1]


def current_sessions(node: ProxyNode, backend: str) -> int:
    """The requests ``backend``'s servers serve now, in the running worker (0 if it has no such backend)."""
    return sum(int(row["scur"] or 0) for row in node.servers(backend, ("scur",)))


def wait_drained(node: ProxyNode, timeout: float, backends: Iterable[str] = ()) -> float:
    """Wait until no old worker is left and ``backends`` serve no request; returns the seconds waited (or raises
    FlowError)."""
    started, backends = time.monotonic(), list(backends)
    while True:
        leaving = old_workers(node)
        sessions = sum(current_sessions(node, backend) for backend in backends)
        if not leaving and not sessions:
            return time.monotonic() - started
        if time.monotonic() - started >= timeout:
            raise FlowError("The proxy still has %d worker(s) and %d request(s) to the old release finishing after %ds "
                            "(drain_timeout)." % (len(leaving), sessions, timeout))
        node.pause(0.5 if leaving else 0.1)
