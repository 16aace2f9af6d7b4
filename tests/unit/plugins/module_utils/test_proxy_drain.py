# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draining before stop-old (proxy_drain): the old workers of a reload, and after a map swap the old color's backend
sessions in the worker that serves both colors. A real proxy draining a slow request: tests/integration/test_proxy.py."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_drain import wait_drained

NO_OLD_WORKER = "#<PID> <type> <reloads> <uptime> <version>\n1 master 2 [failed: 0] 0d00h00m06s 3.0.11\n# workers\n58 worker 0\n"
ONE_OLD_WORKER = NO_OLD_WORKER + "# old workers\n41 worker 1\n"


class Node:
    """The master's ``show proc`` and the old backend's sessions, one answer a poll (the last one repeats)."""

    def __init__(self, procs, sessions):
        self.procs, self.sessions, self.paused = list(procs), list(sessions), 0

    def master(self, command):
        assert command == "show proc"
        return self.procs.pop(0) if len(self.procs) > 1 else self.procs[0]

    def servers(self, backend, columns):
        assert backend == "be_books_blue" and columns == ("scur",)
        count = self.sessions.pop(0) if len(self.sessions) > 1 else self.sessions[0]
        return [{"svname": "b1", "scur": str(count)}, {"svname": "b2", "scur": "0"}]

    def pause(self, seconds):
        self.paused += 1


def test_after_a_map_swap_it_waits_until_the_old_backend_serves_no_request():
    node = Node([NO_OLD_WORKER], [2, 1, 0])
    assert wait_drained(node, 30, ["be_books_blue"]) >= 0
    assert node.paused == 2


def test_after_a_reload_it_waits_for_the_old_workers_too():
    node = Node([ONE_OLD_WORKER, ONE_OLD_WORKER, NO_OLD_WORKER], [0])
    wait_drained(node, 30, ["be_books_blue"])
    assert node.paused == 2


def test_a_request_that_does_not_finish_within_drain_timeout_fails_the_wait_in_one_line():
    node = Node([NO_OLD_WORKER], [1])
    with pytest.raises(FlowError, match=r"^The proxy still has 0 worker\(s\) and 1 request\(s\) to the old release "
                                        r"finishing after 0s \(drain_timeout\)\.$"):
        wait_drained(node, 0, ["be_books_blue"])
