# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sections of the HAProxy configuration that no route changes: global, defaults, the stats listener and the
backend of requests no route takes (haproxy_config renders the rest around them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import ADMIN_SOCKET
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_https import TLS_GLOBAL_LINES
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import CHECK_TIMEOUT

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings

# A new worker starts its servers' checks within this, not within ``inter`` (1 s): a switch waits for the target's
# first check by the worker it started (proxy_answers), which came up to a second after the worker's start.
MAX_SPREAD_CHECKS_MS = 100


def socket_address(address: str, port: int) -> str:
    """An address outside bind lines (stats socket, the master CLI's -S): HAProxy wants ipv6@ for IPv6."""
    return "%s@%s:%d" % ("ipv6" if ":" in address else "ipv4", address.strip("[]"), port)


def global_lines(settings: ProxySettings, certificates: str | None = None) -> list[str]:
    return [
        "global",
        "    log stdout format raw local0 info",
        "    stats socket %s level admin expose-fd listeners" % socket_address(settings.admin_address, settings.admin_port),
        "    stats socket %s mode 600 level admin expose-fd listeners" % ADMIN_SOCKET,
        "    server-state-file %s" % settings.server_state_file,
        "    hard-stop-after 5m",
        "    max-spread-checks %dms" % MAX_SPREAD_CHECKS_MS,
        "    user haproxy",
        "    group haproxy",
    ] + (TLS_GLOBAL_LINES if certificates else [])


def defaults_lines(settings: ProxySettings) -> list[str]:
    # errors: HAProxy skips (does not even format) the line of a request that ended normally.
    access_log = ["    option dontlog-normal"] if settings.access_log == "errors" else []
    after = DEFAULTS_LINES.index("    option httplog") + 1
    return DEFAULTS_LINES[:after] + access_log + DEFAULTS_LINES[after:]


def no_access_log_lines(settings: ProxySettings) -> list[str]:
    """off: the requests of the sections that log them are silent (no line is formatted); the log itself stays,
    for servers going up or down. (``no log`` there would make HAProxy warn at every start that the httplog
    format of the defaults is ignored.) First of the section's http-request rules: a return ends them."""
    return ["    http-request set-log-level silent"] if settings.access_log == "off" else []


DEFAULTS_LINES = [
    "",
    "defaults",
    "    mode http",
    "    log global",
    "    option httplog",
    "    option redispatch",
    "    option idle-close-on-response",
    "    retries 3",
    "    retry-on conn-failure empty-response response-timeout",
    "    timeout connect 3s",
    "    timeout client 30s",
    "    timeout server 30s",
    "    timeout http-keep-alive 10s",
    # As patient as Consul's check: without it a check has only ``inter`` (1 s) to answer, and a new color that
    # Consul passed, alive but slow under its first full load, was marked DOWN by the proxy right after a switch.
    "    timeout check %s" % CHECK_TIMEOUT,
    "    load-server-state-from-file global",
    "    default-server init-addr last,none",
]


def stats_lines(settings: ProxySettings) -> list[str]:
    return [
        "",
        "listen stats",
        "    bind %s:%d" % (settings.stats_address, settings.stats_port),
    ] + no_access_log_lines(settings) + [
        "    stats enable",
        "    stats uri /",
        "    stats refresh 5s",
        "    http-request return status 200 content-type text/plain string ok if { path /healthz }",
        # HAProxy's Prometheus exporter: a backend per service and color (proxy="be_<service>_<color>").
        "    http-request use-service prometheus-exporter if { path /metrics }",
    ]


NO_ROUTE_BACKEND_LINES = [
    "", "backend be_dockerflow_none", "    http-request return status 503 content-type text/plain string 'no route'",
]
