# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the proxy still sends requests to instances that left Consul, asked of the proxy itself.

Instances a step takes away (scale-down, the old instances of a plain release) leave Consul first; the
proxy drops them from its backend only when its resolvers see them gone (Consul DNS, asked every
server_slots.DNS_INTERVAL, then server_slots.OBSOLETE_HOLD). Until then, and while requests it sent
there are in progress, stopping them fails requests. So before they stop, the step asks the proxy's
runtime API (``show stat`` of the color's backend) until none of their addresses is a server in
rotation (not in maintenance) or with sessions in progress (followed by server name once HAProxy
dropped the address), and the master CLI (``show proc``) that no worker of an earlier configuration
(which the runtime API does not answer for) is left and none started in between.

The wait is bounded (``QUIESCE_TIMEOUT_SECONDS``); a proxy that cannot be asked, or instances it
cannot be asked about (an address that is no IPv4 literal), get the fixed wait the steps had before
(instances.DNS_QUIESCE_SECONDS): the caller falls back to it on FlowError.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import server_rows, workers

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode

QUIESCE_TIMEOUT_SECONDS = 15
POLL_SECONDS = 0.25


def checked_endpoints(endpoints: set[str]) -> set[str]:
    """``endpoints`` (``address:port`` as Consul registered them, which is how HAProxy's ``show stat`` writes a
    server's ``addr``); FlowError when the proxy cannot be asked about them: none, or an address that is no IPv4
    literal (the proxy sees what DNS made of it)."""
    if not endpoints:
        raise FlowError("Consul had no address and port registered for them")
    for endpoint in sorted(endpoints):
        address = endpoint.rpartition(":")[0]
        try:
            literal = ipaddress.ip_address(address)
        except ValueError:
            literal = None
        if literal is None or literal.version != 4:
            raise FlowError("their address %r is no IPv4 address, so the proxy cannot be asked about them" % address)
    return endpoints


def servers_in_rotation(stat_csv: str, backend: str, endpoints: set[str], seen: set[str]) -> list[str]:
    """Servers of ``backend`` (``show stat`` CSV) at one of ``endpoints`` the proxy may still send requests to
    (not in maintenance) or has requests in progress at (sessions). A server HAProxy took out of rotation for
    DNS has no address any more: ``seen`` (updated here) names those found at an endpoint in an earlier read."""
    found = []
    for row in server_rows(stat_csv, backend, ("status", "scur", "addr")):
        if row["addr"] in endpoints:
            seen.add(row["svname"])
        elif row["svname"] not in seen or row["addr"]:
            continue  # not ours, or the slot went to another instance meanwhile
        if not row["status"].startswith("MAINT") or int(row["scur"] or 0) > 0:
            found.append(row["svname"])
    return found


def wait_out_of_rotation(node: ProxyNode, backend: str, endpoints: set[str], timeout: float | None = None,
                         poll: float | None = None) -> tuple[float, list[str]]:
    """Ask the proxy until no server of ``backend`` at ``endpoints`` is in rotation or busy, no old worker is
    left, and the same worker answered before and after the read. Returns (seconds waited, the servers still
    in rotation when ``timeout`` (QUIESCE_TIMEOUT_SECONDS) ran out: [] when the proxy is done with them).
    FlowError if it cannot be asked."""
    timeout = QUIESCE_TIMEOUT_SECONDS if timeout is None else timeout
    poll = POLL_SECONDS if poll is None else poll
    started = time.monotonic()
    seen: set[str] = set()
    before, _old = workers(node.master("show proc"))
    while True:
        busy = servers_in_rotation(node.runtime("show stat %s 4 -1" % backend), backend, endpoints, seen)
        after, old = workers(node.master("show proc"))
        if not busy and not old and after == before and after:
            return time.monotonic() - started, []
        if time.monotonic() - started >= timeout:
            return time.monotonic() - started, busy or ["a worker of an earlier configuration"]
        before = after
        node.pause(poll)
