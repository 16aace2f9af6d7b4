# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The info step: a service's recorded state beside its instances and their health in Consul; changes nothing."""

from __future__ import annotations

from ansible_collections.dockerflow.flow.plugins.module_utils.registration import service_id_for
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext


def info(flow: FlowContext) -> dict:
    service = flow.settings.service
    state, index = flow.store.read(service)
    instances = flow.backend.list_instances(service)
    registered = flow.registrar.health(service)
    by_color: dict[str, list[dict]] = {}
    for instance in instances:
        entry = instance.as_dict()
        entry["consul"] = registered.get(service_id_for(instance.name), "not registered")
        by_color.setdefault(instance.color, []).append(entry)
    return {
        "changed": False,
        "service": service,
        "exists": index != 0 or bool(instances),
        "live_color": state.get("live_color"),
        "deployed_color": state.get("deployed_color"),
        "colors": {color: dict(state["colors"].get(color) or {}, members=members) for color, members in by_color.items()},
        "releases": state.get("releases", []),
        "routes": state.get("routes", {}),
        "state": state,
    }
