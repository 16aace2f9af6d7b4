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
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_https import asked_https
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import asked_preview

DEFAULT_PROXY_NAME = "dockerflow-proxy"
# A service's state document in Consul (consul_state).
Document = dict[str, Any]


def route_colors(document: Document) -> tuple[str, ...]:
    """Colors that get a backend: both blue-green colors once either exists, so a switch finds them resolved."""
    known = set(document.get("colors") or {})
    if known & set(colors.BLUE_GREEN_COLORS):
        known |= set(colors.BLUE_GREEN_COLORS)
    return tuple(sorted(known))


def asked_route(service: str, document: Document | None, where: tuple[list[str], str | None, str], color: str | None,
                preview: Mapping[str, Any] | None, https: Mapping[str, Any] | None = None) -> Route:
    """The route of ``service`` asked for (``where``: paths, domain, path type; ``preview`` and ``https`` as
    proxy_preview.asked_preview and proxy_https.asked_https take them), completed from the recorded one, validated."""
    paths, domain, path_type = where
    if not document or not document.get("deployed_color"):
        raise FlowError("Service %s has no release to route; deploy it first." % service)
    previous = document.get("routes") or {}
    if not paths and not domain:
        paths, domain = list(previous.get("paths") or []), previous.get("domain")
        path_type = previous.get("path_type", path_type)
    if not paths and not domain:
        raise FlowError("service_path or service_domain is required to route %s (FLOW_SERVICE_PATH)." % service)
    color = color or document["deployed_color"]
    if color not in (document.get("colors") or {}):
        released = ", ".join(sorted(document.get("colors") or {})) or "none"
        raise FlowError("Service %s has no %s release (it has: %s)." % (service, color, released))
    return Route(
        service=service, color=color, paths=tuple(paths), path_type=path_type, domain=domain,
        colors=route_colors(document), health_path=(document["colors"][color] or {}).get("health_path"),
        preview=asked_preview(recorded=previous.get("preview"), **(preview or {})),
        **asked_https(previous, https),
    ).validated()


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
