# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading HAProxy's answers: the master CLI's ``show proc`` (its workers), and the servers of one backend from the
runtime API's ``show stat`` CSV, by its header's column names (HAProxy adds columns between versions), with what
its own health checks say about them.

A new worker starts from the server-state file the reload saved: a server's status and check status
(``UP``, ``L7OK``) come back, but not the answer code of its last HTTP check, which stays empty or 0 until
this worker has checked the server itself. So an ``L7OK`` with a code is a check this worker made.
Checked on HAProxy 3.0.11: after a reload, a live server showed ``UP,L7OK,0`` until its first check (within one
``inter`` then, within haproxy_sections.MAX_SPREAD_CHECKS_MS now), then ``UP,L7OK,200``; a stopped one ``UP,L7OK,0``,
then ``UP 1/2,L4TOUT``, then ``DOWN``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

NOT_SERVERS = ("BACKEND", "FRONTEND")


def server_rows(stat_csv: str, backend: str, columns: Sequence[str], kinds: Sequence[str] = ()) -> list[dict[str, str]]:
    """The servers of ``backend`` in ``stat_csv`` (or its rows of ``kinds``: ``BACKEND``), each as ``{column: value}``
    for ``columns`` (and ``svname``). FlowError when the answer has no header or lacks one of ``columns``."""
    lines = stat_csv.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise FlowError("the proxy's show stat gave no header")
    header = lines[0][2:].split(",")
    wanted = ("pxname", "svname") + tuple(columns)
    missing = [column for column in wanted if column not in header]
    if missing:
        raise FlowError("the proxy's show stat has no %s column" % " or ".join(missing))
    positions = {column: header.index(column) for column in wanted}
    rows = []
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) <= max(positions.values()):
            continue
        row = {column: fields[index] for column, index in positions.items()}
        if row["pxname"] == backend and ((row["svname"] in kinds) if kinds else (row["svname"] not in NOT_SERVERS)):
            rows.append(row)
    return rows


def is_up(row: dict[str, str]) -> bool:
    return row["status"].startswith("UP")


def passed_a_check_of_this_worker(row: dict[str, str]) -> bool:
    """UP, and its last finished HTTP check (a ``*`` before it marks one in progress) passed with an answer
    code, which the server-state file does not carry over a reload."""
    status = row["check_status"].lstrip("* ")
    return is_up(row) and status == "L7OK" and row["check_code"] not in ("", "0")


def checked_after_the_switch(row: dict[str, str], http_checks: bool, same_worker: bool) -> bool:
    """Whether ``row``'s server passed a check that ran after the switch. After a reload: a check of the new worker
    (HTTP checks only: a TCP check leaves nothing that tells). After a swap of the live colors' map (``same_worker``):
    UP, as only a check that ran after ServerWatch.wait_for_a_fresh_check set it DOWN puts a server back UP."""
    if same_worker:
        return is_up(row)
    return http_checks and passed_a_check_of_this_worker(row)


def failed_reloads(show_proc: str) -> int | None:
    """The master's count of failed reloads since the last good one, from its ``show proc``; None if it says none."""
    match = re.search(r"\[failed: (\d+)\]", show_proc)
    return int(match.group(1)) if match else None


def workers(show_proc: str) -> tuple[list[str], list[str]]:
    """(current, old) worker PIDs from the master CLI's ``show proc``."""
    current: list[str] = []
    old: list[str] = []
    section = None
    for line in show_proc.splitlines():
        if line.startswith("#"):
            section = {"# workers": current, "# old workers": old}.get(line.strip())
            continue
        if section is not None and line.strip():
            section.append(line.split()[0])
    return current, old
