# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's ``deploy`` section as a DeploySpec, in the Docker Engine's Swarm API units.

Anything a blue-green Swarm service cannot honour is an error naming it.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import DeploySpec
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import (
    as_mapping,
    checked_section,
    one_of,
    only_keys,
    parse_bytes,
    parse_duration_ns,
    whole_number,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

SUPPORTED_DEPLOY_KEYS = frozenset(
    ["replicas", "mode", "endpoint_mode", "labels", "placement", "update_config", "rollback_config", "restart_policy",
     "resources"]
)
ENDPOINT_MODES = ("dnsrr", "vip")
SWARM_RESTART_CONDITIONS = ("none", "on-failure", "any")
_PLACEMENT_KEYS = ("constraints", "preferences", "max_replicas_per_node")
_UPDATE_KEYS = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
_FAILURE_ACTIONS = {"update_config": ("continue", "pause", "rollback"), "rollback_config": ("continue", "pause")}
_UPDATE_ORDERS = ("stop-first", "start-first")
_RESTART_POLICY_KEYS = ("condition", "delay", "max_attempts", "window")
_CONSTRAINT_RE = re.compile(r"^\s*[^=!\s][^=!]*(==|!=)\s*\S")


def parse_deploy(value: Any, where: str) -> DeploySpec:
    """``deploy`` as a DeploySpec; anything a blue-green Swarm service cannot honour is an error naming it."""
    if value is None:
        return DeploySpec()
    if not isinstance(value, dict):
        raise FlowError("%s: deploy must be a mapping." % where)
    where = where + ": deploy"
    only_keys(value, SUPPORTED_DEPLOY_KEYS, where)
    mode = value.get("mode", "replicated")
    if mode != "replicated":
        raise FlowError(
            "%s.mode=%r is not supported: blue-green needs a replicated service (mode: replicated) whose "
            "replicas the flow scales." % (where, mode)
        )
    endpoint_mode = value.get("endpoint_mode")
    if endpoint_mode is not None:
        one_of(endpoint_mode, ENDPOINT_MODES, where + ".endpoint_mode")
    placement = checked_section(value.get("placement"), _PLACEMENT_KEYS, where + ".placement")
    constraints = _constraints(placement, where)
    spread = _spread(placement, where)
    resources = checked_section(value.get("resources"), ("limits", "reservations"), where + ".resources")
    return DeploySpec(
        replicas=whole_number(value.get("replicas"), where + ".replicas", minimum=0),
        endpoint_mode=endpoint_mode,
        labels=as_mapping(value.get("labels"), where, "labels"),
        constraints=constraints,
        spread=spread,
        max_replicas_per_node=whole_number(
            placement.get("max_replicas_per_node"), where + ".placement.max_replicas_per_node"
        ),
        update_config=_update_config(value.get("update_config"), where + ".update_config", "update_config"),
        rollback_config=_update_config(value.get("rollback_config"), where + ".rollback_config", "rollback_config"),
        restart_policy=_restart_policy(value.get("restart_policy"), where + ".restart_policy"),
        limits=_resources(resources.get("limits"), where + ".resources.limits", ("cpus", "memory", "pids")),
        reservations=_resources(resources.get("reservations"), where + ".resources.reservations", ("cpus", "memory")),
    )


def _constraints(placement: dict[str, Any], where: str) -> list[str]:
    """``placement.constraints``: ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE items (or the old mapping form)."""
    constraints = placement.get("constraints") or []
    if isinstance(constraints, dict):  # the old mapping form: {node.role: manager}
        constraints = ["%s==%s" % item for item in constraints.items()]
    if not isinstance(constraints, list) or not all(isinstance(c, str) and _CONSTRAINT_RE.match(c) for c in constraints):
        raise FlowError(
            "%s.placement.constraints=%r is not valid: a list of ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, "
            "for example node.role==worker." % (where, constraints)
        )
    return constraints


def _spread(placement: dict[str, Any], where: str) -> list[str]:
    """``placement.preferences``: the attributes to spread over."""
    spread = []
    for preference in placement.get("preferences") or []:
        if not isinstance(preference, dict) or set(preference) != {"spread"} or not preference["spread"]:
            raise FlowError(
                "%s.placement.preferences item %r is not valid: only {spread: ATTRIBUTE} exists." % (where, preference)
            )
        spread.append(str(preference["spread"]))
    return spread


def _update_config(value: Any, where: str, kind: str) -> dict[str, Any] | None:
    """``update_config`` or ``rollback_config`` (``kind``) in the API's form."""
    if value is None:
        return None
    section = checked_section(value, _UPDATE_KEYS, where)
    result: dict[str, Any] = {}
    if "parallelism" in section:
        result["Parallelism"] = whole_number(section["parallelism"], where + ".parallelism", minimum=0)
    _durations(section, (("delay", "Delay"), ("monitor", "Monitor")), where, result)
    if "failure_action" in section:
        result["FailureAction"] = one_of(section["failure_action"], _FAILURE_ACTIONS[kind], where + ".failure_action")
    if "max_failure_ratio" in section:
        result["MaxFailureRatio"] = _failure_ratio(section["max_failure_ratio"], where)
    if "order" in section:
        result["Order"] = one_of(section["order"], _UPDATE_ORDERS, where + ".order")
    return result


def _failure_ratio(value: Any, where: str) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = -1.0
    if not 0 <= ratio <= 1:
        raise FlowError("%s.max_failure_ratio=%r is not a number from 0 to 1." % (where, value))
    return ratio


def _restart_policy(value: Any, where: str) -> dict[str, Any] | None:
    """``restart_policy`` in the API's form (Swarm's conditions, not the service-level ``restart``)."""
    if value is None:
        return None
    section = checked_section(value, _RESTART_POLICY_KEYS, where)
    result: dict[str, Any] = {}
    if "condition" in section:
        result["Condition"] = one_of(section["condition"], SWARM_RESTART_CONDITIONS, where + ".condition")
    _durations(section, (("delay", "Delay"), ("window", "Window")), where, result)
    if "max_attempts" in section:
        result["MaxAttempts"] = whole_number(section["max_attempts"], where + ".max_attempts", minimum=0)
    return result


def _durations(section: dict[str, Any], keys: tuple[tuple[str, str], ...], where: str, result: dict[str, Any]) -> None:
    """The duration ``keys`` (Compose name, API name) present in ``section``, into ``result`` in ns."""
    for key, api_key in keys:
        if key in section:
            result[api_key] = parse_duration_ns(section[key], "%s.%s" % (where, key))


def _resources(value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``resources.limits`` or ``.reservations``: NanoCPUs, MemoryBytes (and Pids for limits)."""
    section = checked_section(value, allowed, where)
    result: dict[str, Any] = {}
    if section.get("cpus") is not None:
        try:
            cpus = float(str(section["cpus"]).strip())
        except ValueError:
            cpus = 0.0
        if cpus <= 0:
            raise FlowError("%s.cpus=%r is not a positive number of CPUs (for example 0.5)." % (where, section["cpus"]))
        result["NanoCPUs"] = round(cpus * 10**9)
    if section.get("memory") is not None:
        result["MemoryBytes"] = parse_bytes(section["memory"], where + ".memory")
    if section.get("pids") is not None:
        result["Pids"] = whole_number(section["pids"], where + ".pids")
    return result
