# -*- coding: utf-8 -*-
"""Reading a backend's servers from ``show stat``, and the hold after a switch ending once a server passed a check
of the new worker (issue 15: flow_proxy's time).

The answers are the shape HAProxy 3.0.11 gave here right after a reload with a server-state file (header cut to the
columns read): a live server ``UP,L7OK,0`` until the new worker checks it, then ``UP,L7OK,200``; a stopped one
``UP,L7OK,0``, then ``UP 1/2,L4TOUT,``, then ``DOWN``. The real proxy refusing a target that died right before the
switch is tests/integration/test_proxy.py and tests/faults/test_interrupted_switch.py.
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import passed_a_check_of_this_worker, server_rows
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode

BACKEND = "be_books-app_green"
HEADER = "# pxname,svname,qcur,scur,status,check_status,check_code,check_duration,addr"


def stat(*servers):
    """``show stat`` of BACKEND with (name, status, check_status, check_code) per server, then BACKEND's line."""
    lines = [HEADER] + ["%s,%s,0,0,%s,%s,%s,1,10.0.0.%d:8080" % ((BACKEND,) + server + (index,))
                        for index, server in enumerate(servers, 1)]
    return "\n".join(lines + ["%s,BACKEND,0,0,UP,,,,," % BACKEND, ""])


RESTORED = stat(("g1", "UP", "L7OK", "0"), ("g2", "UP", "L7OK", "0"))
ONE_CHECKED = stat(("g1", "UP", "L7OK", "200"), ("g2", "UP", "* L7OK", "0"))
ONE_FAILED = stat(("g1", "UP 1/2", "L4TOUT", ""), ("g2", "UP", "L7OK", "0"))
ALL_DOWN = stat(("g1", "DOWN", "L4TOUT", ""), ("g2", "DOWN", "L4CON", ""))


def test_the_servers_of_one_backend_are_read_by_column_name():
    other = stat(("g1", "UP", "L7OK", "200")).replace(BACKEND, "be_other_blue")
    rows = server_rows(ONE_CHECKED + other, BACKEND, ("status", "check_code"))
    assert rows == [{"pxname": BACKEND, "svname": "g1", "status": "UP", "check_code": "200"},
                    {"pxname": BACKEND, "svname": "g2", "status": "UP", "check_code": "0"}]
    with pytest.raises(FlowError, match=r"^the proxy's show stat gave no header$"):
        server_rows("No such proxy.\n", BACKEND, ("status",))
    with pytest.raises(FlowError, match=r"^the proxy's show stat has no agent_status column$"):
        server_rows(RESTORED, BACKEND, ("status", "agent_status"))


@pytest.mark.parametrize("status, check_status, code, passed", [
    ("UP", "L7OK", "200", True),
    ("UP", "* L7OK", "204", True),  # a later check in progress; the last one was this worker's
    ("UP", "L7OK", "0", False),  # restored from the state file
    ("UP", "L7OK", "", False),
    ("UP 1/2", "L4TOUT", "", False),
    ("DOWN", "L7STS", "500", False),
    ("UP", "L4OK", "", False),  # a TCP check carries no sign of which worker made it
])
def test_a_check_of_this_worker_is_an_l7ok_with_an_answer_code(status, check_status, code, passed):
    row = {"status": status, "check_status": check_status, "check_code": code}
    assert passed_a_check_of_this_worker(row) is passed


class AnsweringProxy(ProxyNode):
    """A ProxyNode whose runtime API answers from a list, one answer a poll (the last one repeats)."""

    def __init__(self, answers):  # no container: only the runtime API is asked
        self.answers, self.asked = list(answers), 0
        self.settings = ProxySettings()  # checks every 1000 ms
        self.direct = False  # polled as through docker exec: each wait keeps its own interval

    def runtime(self, command):
        assert command == "show stat %s 4 -1" % BACKEND
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_the_hold_ends_once_a_server_passed_a_check_of_the_new_worker():
    proxy = AnsweringProxy([RESTORED, RESTORED, ONE_CHECKED])
    started = time.monotonic()
    assert proxy.hold_servers_up(BACKEND, 30, http_checks=True) == 2
    assert proxy.asked == 3 and time.monotonic() - started < 5


def test_without_http_checks_the_hold_lasts_its_whole_length():
    proxy = AnsweringProxy([ONE_CHECKED])
    started = time.monotonic()
    assert proxy.hold_servers_up(BACKEND, 0.6) == 2
    assert time.monotonic() - started >= 0.6 and proxy.asked >= 2


def test_a_target_that_died_before_the_switch_is_held_until_the_checks_mark_it_down():
    proxy = AnsweringProxy([RESTORED, ONE_FAILED, ALL_DOWN])
    assert proxy.hold_servers_up(BACKEND, 30, http_checks=True) == 0
    assert proxy.asked == 3


def test_a_backend_the_worker_does_not_have_has_no_server_up():
    assert AnsweringProxy(["No such proxy.\n"]).servers_up(BACKEND) == 0


# After a swap of the live colors' map (live_map) the worker is the same one: before the swap, its servers of the
# target were set DOWN, and only a check that passed since put them back UP (wait_for_a_fresh_check).
SAME_WORKER_UP = stat(("g1", "UP", "L7OK", "200"), ("g2", "UP", "L7OK", "200"))
MARKED_DOWN = stat(("g1", "DOWN", "L7OK", "200"), ("g2", "DOWN", "L7OK", "200"))
ONE_BACK = stat(("g1", "UP", "L7OK", "200"), ("g2", "DOWN", "L7OK", "200"))


class WorkerProxy(AnsweringProxy):
    """Reads through the master CLI's @1 from the same list; the other lines it got, kept."""

    sent: list

    def newest_worker(self, command):
        if command.startswith("show stat"):
            return self.runtime(command)
        self.sent.append(command)
        return "\n"

    def pause(self, seconds):  # no wait: the answers come from the list
        return None


def test_after_a_map_swap_the_hold_ends_at_once_on_a_server_up():
    proxy = AnsweringProxy([SAME_WORKER_UP])
    assert proxy.hold_servers_up(BACKEND, 30, same_worker=True) == 2 and proxy.asked == 1


def test_a_fresh_check_sets_the_servers_up_down_and_waits_until_one_passed_a_check_again():
    proxy = WorkerProxy([stat(("g1", "UP", "L7OK", "200"), ("g2", "MAINT", "", "")), MARKED_DOWN, MARKED_DOWN, ONE_BACK])
    proxy.sent = []
    assert proxy.wait_for_a_fresh_check(BACKEND, 30, 60) == 1
    assert proxy.sent == ["set server %s/g1 health down" % BACKEND] and proxy.asked == 4


def test_a_target_whose_servers_fail_the_fresh_check_is_refused_in_one_line():
    proxy = WorkerProxy([SAME_WORKER_UP, MARKED_DOWN])
    proxy.sent = []
    with pytest.raises(FlowError, match=r"^No server of be_books-app_green passed a check within 0.3s of the switch\.$"):
        proxy.wait_for_a_fresh_check(BACKEND, 0.3, 60)


class MasterProxy(ProxyNode):
    """The master CLI's lines, kept (no container)."""

    def __init__(self):  # no container: only the master CLI is asked
        self.lines = []

    def master(self, command):
        self.lines.append(command)
        return "\n"


def test_each_command_of_a_line_to_the_newest_worker_names_it_and_a_payload_stays_one_command():
    """Found by tests/faults (the dead target at the switch): the master CLI sends only the first command of
    "@1 a;b" to the worker and runs b itself, so the second server of the target was never set DOWN."""
    proxy = MasterProxy()
    proxy.newest_worker("set server b/g1 health down;set server b/g2 health down")
    proxy.newest_worker("add map @3 /f <<\nx blue\ny green\n")
    assert proxy.lines == ["@1 set server b/g1 health down;@1 set server b/g2 health down",
                           "@1 add map @3 /f <<\nx blue\ny green\n"]


def test_servers_not_up_yet_are_not_set_down_and_come_up_by_a_check_within_the_switch_timeout():
    """A release switches to instances just deployed: the check that brings them UP ran after the intent."""
    coming = stat(("g1", "MAINT", "", ""), ("g2", "DOWN", "L4CON", ""))
    proxy = WorkerProxy([coming, coming, ONE_BACK])
    proxy.sent = []
    assert proxy.wait_for_a_fresh_check(BACKEND, 0, 60) == 1
    assert proxy.sent == [] and proxy.asked == 3
