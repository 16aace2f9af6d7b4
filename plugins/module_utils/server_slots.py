# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy's server slots: how many instances of one color it can send requests to.

Each color's backend is a ``server-template`` of ``proxy_max_servers`` slots filled from Consul
DNS; an instance beyond them runs, passes its checks and gets no request. The option belongs to
the proxy (flow_proxy), but deploy and scale start the instances: flow_proxy records the slots in
the route of each service it routes (``routes.max_servers``), and deploy and scale refuse to run
more instances of a routed service than that.
"""

from __future__ import annotations

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

DEFAULT_SERVER_SLOTS = 32  # also what versions that did not record the slots rendered
# Consul DNS answers in one UDP datagram, at most 65535 bytes, about 100 bytes an instance (SRV answer
# plus its A record): 500 leaves room for long node names and datacenter or domain names.
MAX_SERVER_SLOTS = 500
DNS_FAILURE_HOLD = "24h"
NO_INSTANCE_HOLD = "30s"
# How often the proxy asks Consul DNS for each backend's servers (HAProxy 3.0 asks every ``timeout resolve``,
# whatever the last answer). At 1 s a release took 0.8-1.0 s longer: a switch waits for the running worker to find
# the new color's instances, then for the new worker's first passed check of them. Asking only the live colors,
# or only the others, every 250 ms left it as slow (benchmarks/README.md, "Consul DNS asked every 250 ms").
# The cost, measured at 200 routes of one instance each: HAProxy 1.8 % of a core instead of 0.6 %, Consul 9 %
# instead of 4 %.
DNS_INTERVAL = "250ms"
# An instance Consul stops naming (scaled down, stopped) leaves the backend once no answer named it for this long:
# 4 answers at DNS_INTERVAL. At 2 s, asking every 250 ms made a scale-down's wait for the proxy (proxy_rotation)
# 0.5 s longer than it was with 1 s and 2 s (benchmarks/README.md, "Consul DNS asked every 250 ms").
OBSOLETE_HOLD = "1s"


def check_server_slots(value: object, parameter: str = "proxy_max_servers") -> int:
    """``value`` as a slot count, or FlowError naming ``parameter`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SERVER_SLOTS:
        raise FlowError("%s=%r is not valid: use 1 to %d (servers of one color the proxy routes to)."
                        % (parameter, value, MAX_SERVER_SLOTS))
    return value


def dns_payload_size(slots: int) -> int:
    """The DNS payload HAProxy accepts (``accepted_payload_size``), so Consul answers with every instance.

    Measured on Consul 1.8 with 8192 bytes: 64 instances fit with their A records, 100 without
    them, and beyond 135 Consul drops answers (no truncation flag), so a random subset fills the
    slots at each resolution. About 96 bytes an instance: 128 leaves a margin.
    """
    return min(65535, max(8192, 128 * slots + 1024))


def recorded_slots(state: dict) -> int | None:
    """The slots of the proxy that routes the service (``state``), or None for an unrouted one."""
    routes = state.get("routes") or {}
    if not routes:
        return None
    return int(routes.get("max_servers") or DEFAULT_SERVER_SLOTS)


def refuse_beyond_slots(state: dict, service: str, color: str, wanted: int, current: int, asked: str) -> str | None:
    """Fail when ``wanted`` instances of ``color`` would outgrow the slots of the proxy routing ``service``.

    ``asked`` names the request in the message (``scale=+2``). A count that shrinks but still
    exceeds the slots is allowed, with the warning returned (None when everything fits).
    """
    slots = recorded_slots(state)
    if slots is None or wanted <= slots:
        return None
    proxy = (state.get("routes") or {}).get("proxy") or "the proxy"
    if wanted > current:
        raise FlowError(
            "%s would run %d %s instance(s) of %s, but proxy %s routes to at most %d of one color "
            "(proxy_max_servers, recorded when flow_proxy last routed %s); route it again with a larger "
            "proxy_max_servers first." % (asked, wanted, color, service, proxy, slots, service)
        )
    return ("%s leaves %d %s instance(s) of %s, more than the %d proxy %s routes to (proxy_max_servers): "
            "%d get no request." % (asked, wanted, color, service, slots, proxy, wanted - slots))


def overfull_colors(documents: dict, proxy_name: str, slots: int, default_proxy: str) -> list:
    """(service, color, instances) of the services ``proxy_name`` routes whose recorded count exceeds ``slots``."""
    found = []
    for service, document in sorted(documents.items()):
        routes = document.get("routes") or {}
        if not routes or routes.get("proxy", default_proxy) != proxy_name:
            continue
        for color, record in sorted((document.get("colors") or {}).items()):
            count = (record or {}).get("instances") or 0
            if (record or {}).get("state", "running") == "running" and count > slots:
                found.append((service, color, count))
    return found


def overfull_warning(service: str, color: str, count: int, slots: int) -> str:
    return ("%s (%s) runs %d instances, more than the %d the proxy routes to of one color (proxy_max_servers): "
            "%d get no request." % (service, color, count, slots, count - slots))


def refuse_a_switch_beyond_slots(service: str, color: str, instances: int, slots: int) -> None:
    """FlowError before a switch to a color with more instances than the proxy has slots for."""
    if instances > slots:
        raise FlowError("%s (%s) runs %d instances, more than proxy_max_servers=%d (servers of one color the proxy "
                        "routes to): raise proxy_max_servers, or scale it down; not switching."
                        % (service, color, instances, slots))


def resolvers_lines(address: str, port: int, max_servers: int) -> list[str]:
    """Consul DNS, where the server-template slots of every backend find their servers."""
    return [
        "",
        "resolvers consul",
        "    nameserver consul %s:%d" % (address, port),
        "    accepted_payload_size %d" % dns_payload_size(max_servers),
        "    resolve_retries 3",
        "    timeout resolve %s" % DNS_INTERVAL,
        "    timeout retry 500ms",
        "    hold valid 1s",
        "    hold obsolete %s" % OBSOLETE_HOLD,
        # NXDOMAIN (no passing instance at all) is also what a restarted Consul answers for seconds before it
        # has replayed its catalog: keep the servers for HAProxy's default 30 s rather than serve 503 from
        # running instances; their own checks still take dead ones out at once.
        "    hold nx %s" % NO_INSTANCE_HOLD,
        # Consul unreachable or failing is not "no instance": keep serving the servers known so far (their own
        # checks still take dead ones out). HAProxy's default, 30 s, drops them all when Consul is down longer.
        "    hold refused %s" % DNS_FAILURE_HOLD,
        "    hold timeout %s" % DNS_FAILURE_HOLD,
        "    hold other %s" % DNS_FAILURE_HOLD,
    ]
