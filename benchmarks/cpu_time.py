# -*- coding: utf-8 -*-
"""CPU time of a container's processes, from /proc/<pid>/stat (utime + stime).

The container's processes are listed with ``docker top`` (host PIDs), and each one's
user and system time is read from this machine's /proc: the proxies' CPU per request,
which depends less on the machine's load than requests per second do. A process that
exits between two readings takes its time with it, so only long-lived processes count
(the proxies' master and workers; nothing reloads while a round runs). Time spent
for the container elsewhere (dockerd's log driver, docker-proxy) is not in it.
"""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) of one /proc/<pid>/stat line.

    The command name (field 2) is in parentheses and may hold spaces and ')', so the
    fields are counted after its last ')': state is field 3, utime 14, stime 15.
    """
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def top_pids(top: dict) -> list[int]:
    """Host PIDs from a ``docker top`` answer ({"Titles": [...], "Processes": [[...], ...]})."""
    column = top["Titles"].index("PID")
    return [int(process[column]) for process in top.get("Processes") or []]


def container_cpu_seconds(container) -> float | None:
    """User + system CPU seconds of the container's running processes; None when they cannot be read
    (the container is gone, or its engine runs in another PID namespace than this script)."""
    try:
        pids = top_pids(container.top())
    except Exception:
        return None
    ticks, read = 0, 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as handle:
                ticks += stat_cpu_ticks(handle.read())
            read += 1
        except OSError:  # exited since `docker top` (a `docker exec`), or not visible from here
            continue
    return ticks / float(CLOCK_TICKS) if read else None


def process_cpu_seconds(command: str) -> float | None:
    """User + system CPU seconds of this machine's processes named ``command`` (e.g. dockerd, whose log driver
    copies every line a container writes to stdout); None when there is none."""
    ticks, read = 0, 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:  # exited since the listing
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == command:
            ticks += stat_cpu_ticks(stat)
            read += 1
    return ticks / float(CLOCK_TICKS) if read else None
