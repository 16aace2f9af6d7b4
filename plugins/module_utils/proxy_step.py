# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy step as a module's options ask for it: flow_proxy runs it alone, flow_release after its deploy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.colors import BLUE
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import empty_state
from ansible_collections.dockerflow.flow.plugins.module_utils.options import default
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import given_certificates
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import PREVIEW_WAYS
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_routes import refuse_a_taken_path, routes_from_documents

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.flow import Flow


def proxy_flow(runner: FlowModule, flow_of: Callable[[], Flow]) -> ProxyFlow:
    """The proxy step of the service of ``flow_of()`` through the proxy the options name, with their certificates
    (checked first: a bad one fails before anything is reached)."""
    params = runner.params
    certificates = given_certificates(params["proxy_certificates"])
    return ProxyFlow(flow_of(), runner.proxy_node(), switch_timeout=params["switch_timeout"], certificates=certificates)


def asked_route(runner: FlowModule) -> dict[str, Any]:
    """What the options ask of the service's route: ProxyFlow.run's keyword arguments besides state and color."""
    values = runner.values
    return dict(
        service_path=values.get("service_path"),
        service_domain=values.get("service_domain"),
        path_type=values.get("path_type") or default("path_type"),
        preview={way: values.get("preview_" + way) for way in PREVIEW_WAYS},
        https={name: values.get(name) for name in ("https_redirect", "hsts_max_age")},
    )


def refuse_a_bad_route(proxy: ProxyFlow, service_path: Iterable[str] | None = None, service_domain: str | None = None,
                       path_type: str = "prefix", preview: Mapping[str, Any] | None = None,
                       https: Mapping[str, Any] | None = None) -> None:
    """Before a release deploys (flow_release): refuse the route its switch would refuse for the values asked (none
    at all, a bad path, domain, preview or HTTPS setting, a path another service takes), so that a bad input changes
    nothing. Which color the deploy makes does not matter to them, so any color stands for it."""
    service, documents = proxy.flow.settings.service, proxy.flow.store.read_all()
    document = documents.get(service) or empty_state(service)
    color = document.get("deployed_color") or BLUE
    imagined = dict(document, deployed_color=color, colors=dict({color: {}}, **document["colors"]))
    route = proxy.route(imagined, (list(service_path or []), service_domain, path_type), color, preview, https)
    refuse_a_taken_path(route, routes_from_documents(documents, proxy.node.name, skip=service), proxy.node.name)
