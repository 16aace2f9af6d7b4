# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module reaches HAProxy's runtime API and master CLI: over its own TCP connection or through docker exec.

Both listen on the proxy host's network (the container runs with the host network) at proxy_admin_address. The
helper script in the container (proxy_files.CLI_SCRIPT) reaches them from any Docker engine, local or remote, but
each ``docker exec`` costs about 0.1 s, and a switch asks a dozen times. A module that shares the proxy
container's network (namespace) connects to the same address and port itself, in a few milliseconds. It does so
only when all of these hold:

- its Docker engine is on a local unix socket: a remote engine's proxy is not on this machine's loopback, even if
  this machine runs a proxy of its own there;
- the proxy container's process is in this process's network namespace (``/proc/PID/ns/net``): a rootless
  engine's "host" network, or an execution environment with the engine's socket mounted but a network of its
  own, is another one;
- what answers there is an HAProxy whose ``node`` (the host name, which a host-network container shares with its
  host) is this process's host name.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

LOCAL_ENGINE_URL = "http+docker://localhost"  # docker-py's base_url for an engine on a unix socket
ANSWER_TIMEOUT = 10.0  # as the helper script's `timeout 10`
PROBE_TIMEOUT = 1.0


def ask(host: str, port: int, command: str, timeout: float = ANSWER_TIMEOUT) -> str:
    """HAProxy's whole answer to ``command`` (one line; ``;`` separates several) at ``host``:``port``; OSError if
    it does not answer. The CLI closes the connection after its answer (``quit`` for a master CLI in prompt mode)."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(("%s\nquit\n" % command).encode("utf-8"))
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def shares_network_namespace(pid: int) -> bool:
    """Whether process ``pid`` (as this machine numbers it) has this process's network namespace; False when
    either cannot be read (another PID namespace, or no right to look)."""
    try:
        return os.readlink("/proc/%d/ns/net" % pid) == os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def reaches_directly(engine_url: str, inspect: Callable[[], dict | None], host: str, port: int) -> bool | None:
    """Whether this process reaches the runtime API of the proxy container (``inspect``: the engine's inspection of
    it, None without one) at ``host``:``port`` itself (see the module's docstring); None when that is not known yet
    (a proxy that is not running, or not answering yet): ask again later."""
    if engine_url != LOCAL_ENGINE_URL:
        return False
    pid = ((inspect() or {}).get("State") or {}).get("Pid") or 0  # 0: not running
    if not pid:
        return None
    if not shares_network_namespace(pid):
        return False
    try:
        info = ask(host, port, "show info", timeout=PROBE_TIMEOUT)
    except OSError:
        return None
    return "node: %s" % socket.gethostname() in info.splitlines()
