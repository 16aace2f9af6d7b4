# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running worker says of a backend's servers (``show stat``): how many are UP, and whether they stay UP
after a switch for as long as HAProxy's checks need to find a dead one. ProxyNode has these."""

from __future__ import annotations

import time

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import (
    checked_after_the_switch,
    is_up,
    server_rows,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_part import ProxyPart


class ServerWatch(ProxyPart):
    """The server-watching part of proxy_node.ProxyNode."""

    def wait_for_a_fresh_check(self, backend: str, timeout: float, coming_up_timeout: float) -> int:
        """Before a swap of the live colors' map, after the switch's intent: a server of ``backend`` passed a check
        that ran since. The worker that swaps checked the target before too, so its UP says nothing of a server
        killed since, and HAProxy has no command that runs a check now: the servers UP are set DOWN (``set server
        ... health down``, which leaves their address and admin state alone) and the next check, within ``inter``,
        puts a live one back UP (rise 1), else the wait fails after ``timeout``. Servers not UP yet (a release just
        deployed) come UP by such a check anyway: then the wait is ``coming_up_timeout``, as long as DNS and the first
        checks may take. Returns the servers UP. Reads and writes go to the newest worker (a staging reload may have
        just run)."""
        names = [row["svname"] for row in self.servers(backend, newest=True) if is_up(row)]
        if names:
            self.newest_worker(";".join("set server %s/%s health down" % (backend, name) for name in names))
        wait = timeout if names else coming_up_timeout
        deadline = time.monotonic() + wait
        while True:
            up = sum(1 for row in self.servers(backend, newest=True) if is_up(row))
            if up:
                return up
            if time.monotonic() >= deadline:
                raise FlowError("No server of %s passed a check within %gs of the switch." % (backend, wait))
            self.pause(0.05)

    def servers(self, backend: str, columns: tuple[str, ...] = ("status",), newest: bool = False) -> list[dict[str, str]]:
        command = "show stat %s 4 -1" % backend  # this backend's servers only (type 4, all ids)
        answer = self.newest_worker(command) if newest else self.runtime(command)
        return server_rows(answer, backend, columns) if answer.startswith("# ") else []  # "No such proxy.", or none

    def servers_up(self, backend: str) -> int:
        """Number of servers UP in ``backend`` of the current worker (0 if it does not exist)."""
        return sum(1 for row in self.servers(backend) if is_up(row))

    def hold_servers_up(self, backend: str, seconds: float, since: float | None = None,
                        http_checks: bool = False, same_worker: bool = False) -> int:
        """Watch ``backend`` in the running worker until ``seconds`` after ``since`` (a time.monotonic(), else now):
        the fewest servers seen UP (0 ends the watch). It also ends once a server UP passed a check that ran after
        the switch (proxy_answers.checked_after_the_switch; ``http_checks``: the backend checks a health path,
        ``same_worker``: the switch swapped the worker's map after wait_for_a_fresh_check)."""
        started = time.monotonic() if since is None else since
        columns, fewest = ("status", "check_status", "check_code"), None
        while True:
            rows = self.servers(backend, columns)
            up = sum(1 for row in rows if is_up(row))
            fewest = up if fewest is None else min(fewest, up)
            checked = any(checked_after_the_switch(row, http_checks, same_worker) for row in rows)
            if not fewest or checked or time.monotonic() >= started + seconds:
                return fewest
            # A server the checks find dead stays DOWN: 0.5 s will do, unless a passed check can end the watch.
            self.pause(0.2 if http_checks or same_worker else 0.5)

    def wait_servers_up(self, backend: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            count = self.servers_up(backend)
            if count:
                return count
            if time.monotonic() >= deadline:
                raise FlowError(
                    "The proxy sees no healthy server in %s after %ds: check that the instances are "
                    "registered and passing in Consul, and that the proxy reaches Consul DNS." % (backend, timeout)
                )
            self.pause(0.3)
