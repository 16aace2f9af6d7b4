# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy step as a module's options ask for it: flow_proxy runs it alone, flow_release after its deploy."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.options import default
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import given_certificates
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import PREVIEW_WAYS

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
