# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routes one proxy serves, as the service documents in Consul record them (consul_state)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import Route
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import weights_file_text

DEFAULT_PROXY_NAME = "dockerflow-proxy"
# A service's state document in Consul (consul_state).
Document = dict[str, Any]


def route_colors(document: Document) -> tuple[str, ...]:
    """Colors that get a backend: both blue-green colors once either exists, so a switch finds them resolved."""
    known = set(document.get("colors") or {})
    if known & set(colors.BLUE_GREEN_COLORS):
        known |= set(colors.BLUE_GREEN_COLORS)
    return tuple(sorted(known))


def routes_from_documents(documents: Mapping[str, Document], proxy_name: str, skip: str | None = None) -> list[Route]:
    """The routes one proxy serves: several proxies (internal, public) may share a Consul."""
    routes = []
    for service, document in sorted(documents.items()):
        if service == skip or not document.get("routes"):
            continue
        if document["routes"].get("proxy", DEFAULT_PROXY_NAME) != proxy_name:
            continue
        data = dict(document["routes"], colors=list(route_colors(document)))
        routes.append(Route.from_dict(service, data))
    return routes


def conflicting_rule(route: Route, others: Iterable[Route]) -> tuple[str, str | None] | None:
    """The (service, path) of another route that claims the same host and path, or None."""
    for other in others:
        if (other.domain or None) != (route.domain or None) or other.path_type != route.path_type:
            continue
        for path in route.paths or (None,):
            if path in (other.paths or (None,)):
                return other.service, path
    return None


def refuse_a_taken_path(route: Route, others: Iterable[Route], proxy_name: str) -> None:
    clash = conflicting_rule(route, others)
    if clash:
        raise FlowError("service_path %s%s is already routed to service %s by proxy %s; remove that route first."
                        % (route.domain or "", clash[1] or "", clash[0], proxy_name))


def canary_weights(documents: Mapping[str, Document], proxy_name: str) -> str:
    """The canary weights file of one proxy (proxy_canary.WEIGHTS_FILE): every canary its recorded routes have."""
    routes = routes_from_documents(documents, proxy_name)
    return weights_file_text((route.service, route.canary) for route in routes if route.canary)
