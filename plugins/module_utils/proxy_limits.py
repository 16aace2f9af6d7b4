# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy container's file-descriptor limit (``proxy_nofile``), and the engine's refusal of one.

HAProxy reserves a descriptor for each server with a health check and two for each connection: without
``maxconn`` it takes its connection limit from what the ``nofile`` limit leaves, and with strict-limits (the
default of 3.0) it does not start when the servers alone do not fit. A container inherits its engine's
limit unless it is created with its own; that is fixed for the container's life (Docker cannot update it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

MIN_NOFILE = 1024
MAX_NOFILE = 1073741816  # Linux's highest fs.nr_open: no process can be given more
NOFILE_RANGE_DOC = ("1,024", "1,073,741,816")
# At most this many server slots always leave connections more descriptors than the slots take: an engine gives a
# container at least 1,024, and HAProxy's connection limit is what the slots leave, halved (two a connection).
SLOTS_ALWAYS_FITTING = 512
_SLOTS = re.compile(r"^ +server-template \S+ 1-(\d+) ", re.MULTILINE)
# What runc says when the engine may not raise a container's limit (setrlimit: EPERM); type 7 is RLIMIT_NOFILE.
_REFUSED = re.compile(r"error setting rlimit type 7: ([^:]+)")


def check_nofile(value: object, parameter: str = "proxy_nofile") -> int | None:
    """``value`` as a nofile limit (None: the engine's own), or FlowError naming ``parameter`` and the range."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_NOFILE <= value <= MAX_NOFILE:
        raise FlowError("%s=%r is not valid: use %s to %s (file descriptors the proxy container may open)."
                        % ((parameter, value) + NOFILE_RANGE_DOC))
    return value


def ulimits(nofile: int | None) -> list[dict[str, object]] | None:
    """The container's ``Ulimits`` for ``nofile`` (None: none of its own)."""
    return None if nofile is None else [{"Name": "nofile", "Soft": nofile, "Hard": nofile}]


def container_nofile(container: dict) -> int | None:
    """The nofile limit a container was created with (``inspect``), or None when it inherits the engine's."""
    for limit in (container.get("HostConfig") or {}).get("Ulimits") or []:
        if limit.get("Name") == "nofile":
            return limit.get("Hard")
    return None


def drift(container: dict, nofile: int | None) -> list[str]:
    """How ``container`` (``inspect``) differs from ``nofile`` (ProxyNode.drift), if it does."""
    running = container_nofile(container)
    if running == nofile:
        return []
    return ["may open %s file descriptors, not %s (proxy_nofile)"
            % ("the engine's number of" if running is None else running, nofile)]


def refused_nofile(message: str, nofile: int | None, name: str) -> FlowError | None:
    """A one-line FlowError when ``message`` (the engine's, starting the container) says it cannot give the
    limit, else None."""
    match = _REFUSED.search(message)
    if match is None or nofile is None:
        return None
    return FlowError("The Docker engine of proxy %s cannot give its container proxy_nofile=%d (setrlimit: %s): an engine"
                     " without CAP_SYS_RESOURCE gives no more than its own limit; use a lower proxy_nofile, or raise"
                     " the engine's (LimitNOFILE of its service)." % (name, nofile, match.group(1).strip()))


def short_of_descriptors(haproxy_output: str) -> str:
    """What to do, when HAProxy (its output, ``haproxy_output``) did not start for lack of file descriptors."""
    if "Cannot raise FD limit" not in haproxy_output:
        return ""
    return (" HAProxy needs a file descriptor for each server slot (proxy_max_servers x 2 x routed services) and two"
            " a connection: give the proxy container more (proxy_nofile) or use fewer slots.")


def server_slots(config: str) -> int:
    """The server slots of a configuration haproxy_config rendered (its server-template lines)."""
    return sum(int(count) for count in _SLOTS.findall(config))


def short_of_connections(slots: int, show_info: Callable[[], str], name: str) -> str | None:
    """A warning when ``slots`` take more of the proxy's file descriptors than its connections may: HAProxy's
    connection limit (Maxconn) is what the slots leave of its Ulimit-n, halved, as the running worker's answer to
    ``show_info()`` says. That is asked only above SLOTS_ALWAYS_FITTING; None when the worker does not answer (right
    after a reload the leaving one may not): a warning never fails a step."""
    if slots <= SLOTS_ALWAYS_FITTING:
        return None
    try:
        info = dict(line.split(": ", 1) for line in show_info().splitlines() if ": " in line)
        connections, limit = int(info["Maxconn"]), int(info["Ulimit-n"])
    except (FlowError, KeyError, ValueError):
        return None
    if slots <= 2 * connections:
        return None
    return ("Proxy %s accepts at most %d connections at once: its %d server slots take a file descriptor each, of the "
            "%d it may open, and a connection takes two. Give it more (proxy_nofile) or fewer slots "
            "(proxy_max_servers)." % (name, connections, slots, limit))
