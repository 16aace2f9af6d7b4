# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A switch of a route's color alone: its cost does not grow with the routes (issue 15).

A switch that renders the whole configuration reads every service's state, renders every route and compares
the result with what runs: at 1,000 routes that is most of its time. When the running worker already runs the
route's rules and backends as asked (its map holds the route's fingerprint: live_map, haproxy_config.shape and
route_fingerprint), a switch changes only the route's color in the worker's map. It reads the service's own state
and the worker's map, renders nothing, and goes through the same intent, fresh check, confirmation and commit as
any switch (ProxyFlow.through_intent). Anything else (a new route, other paths, a change of the settings or the
certificates, a canary, a proxy that is not running or must be replaced, a map of an earlier release) renders
the whole configuration (ProxyFlow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import Route, backend_name, route_fingerprint
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import LIVE_MAP_NAME, LiveMap, route_key
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import DEFAULT_SERVER_SLOTS
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import commit_served

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow


class Activation(NamedTuple):
    """What a switch activates (ProxyFlow.through_intent): the generation the worker serves once it did, whether
    only the live colors change (then the target gets a fresh check first), how to activate it (True when the
    worker's map took it) and how to put back what ran (which says how that went)."""

    generation: str
    swaps: bool
    activate: Callable[[], bool]
    restore: Callable[[], str]


def switch_color(proxy: ProxyFlow, document: dict[str, Any], route: Route) -> dict[str, Any] | None:
    """The result of the switch to ``route`` (asked and validated) when it changes the route's color alone, or
    None when it does not: then the caller renders the whole configuration."""
    node, flow = proxy.node, proxy.flow
    recorded_slots = (document.get("routes") or {}).get("max_servers") or DEFAULT_SERVER_SLOTS
    if route.color not in route.colors or recorded_slots != node.settings.max_servers:
        return None  # a backend or the slots would change
    if node.status() != "running" or node.drift() or node.replacement().retiring():
        return None  # the proxy is created, started or replaced with every route
    running = node.running_map()
    fingerprint = route_fingerprint(route, node.settings, proxy.certificates.digest())
    if running is None or running.entries.get(route_key(route.service)) != fingerprint or running.body is None:
        return None
    node.write_files(private_files=proxy.certificates.files(), check_mode=flow.check_mode)
    new = running.recolored(route.service, route.color)
    diff = dict(before=_text(running), after=_text(new), what=LIVE_MAP_NAME)
    if running.entries.get(route.service) == route.color and document.get("live_color") == route.color:
        return proxy.routed(route, document, None, **diff)
    if flow.check_mode:
        return proxy.routed(route, document, None, would=True, **diff)
    if running.entries.get(route.service) == route.color:  # the proxy serves it already; only the state lags behind
        servers = proxy.servers_up_or_refuse(backend_name(route.service, route.color), document)
        flow.store.update(route.service, lambda doc: commit_served(doc, proxy.recorded_route(route)))
    else:
        servers = proxy.through_intent(route, document, Activation(
            new.generation or "", True, lambda: _recolor(proxy, new, running), lambda: _restore(proxy, running, new)))
    return proxy.routed(route, document, servers, **diff)


def _text(live: LiveMap) -> str:
    return "".join(line + "\n" for line in live.lines())


def _recolor(proxy: ProxyFlow, new: LiveMap, running: LiveMap) -> bool:
    proxy.node.recolor(new, running)
    proxy.flow.progress("proxy live colors %s swapped in" % new.generation)
    return True


def _restore(proxy: ProxyFlow, running: LiveMap, new: LiveMap) -> str:
    try:
        proxy.node.recolor(running, new)
    except FlowError as error:
        return "restoring the previous configuration failed: %s" % error.msg.rstrip(".")
    return "the previous configuration was restored"
