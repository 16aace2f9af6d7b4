# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network addresses as options give them: loopback or not, and how to reach a bound one locally."""

from __future__ import annotations

import ipaddress

WILDCARDS = ("*", "0.0.0.0", "::", "[::]", "")


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (brackets allowed); False for names and anything else."""
    host = (host or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_address(bind_address: str) -> str:
    """Where a process on the same host reaches a socket bound to ``bind_address``."""
    if bind_address in WILDCARDS:
        return "::1" if ":" in bind_address else "127.0.0.1"
    return bind_address.strip("[]")


def exposure_warnings(stats_address: str, admin_address: str) -> list[str]:
    """Warnings for the proxy's own endpoints (proxy_stats_address, proxy_admin_address) bound beyond its host's
    loopback."""
    warnings = []
    if not is_loopback(stats_address):
        warnings.append(
            "proxy_stats_address=%s: the statistics page (every route, backend and server) is open to anyone who "
            "reaches that address, without authentication." % stats_address
        )
    if not is_loopback(admin_address):
        warnings.append(
            "proxy_admin_address=%s: HAProxy's runtime API (admin level) and master CLI take commands from anyone "
            "who reaches that address, without authentication." % admin_address
        )
    return warnings
