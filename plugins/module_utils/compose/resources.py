# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project's named resources: the top-level ``networks`` and ``volumes`` sections.

Other top-level resource sections (and the options of these) belong here too.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.network_ipam import parse_ipam
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_mapping
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

RESOURCE_KEYS = frozenset(["name", "external", "driver", "driver_opts", "labels"])


def top_level_resources(section: Any, path: str, kind: str) -> dict[str, dict[str, Any]]:
    """``networks`` or ``volumes`` (``kind``): key -> {"name", "external", "driver", "driver_opts", "labels"}.

    ``name`` is None for a resource the backend names after the project.
    """
    result: dict[str, dict[str, Any]] = {}
    if section is None:
        return result
    if not isinstance(section, dict):
        raise FlowError("%s: top-level %s must be a mapping." % (path, kind))
    for key, value in section.items():
        value = value or {}
        if not isinstance(value, dict):
            raise FlowError("%s: %s.%s must be a mapping." % (path, kind, key))
        unknown = sorted(set(value) - RESOURCE_KEYS - ({"ipam"} if kind == "networks" else set()))
        if unknown:
            raise FlowError("%s: %s.%s: key(s) %s are not supported." % (path, kind, key, ", ".join(unknown)))
        external = value.get("external", False)
        if isinstance(external, dict):
            name = external.get("name") or value.get("name") or key
            external = True
        else:
            external = bool(external)
            name = value.get("name") or (key if external else None)
        result[str(key)] = {
            "name": name,
            "external": external,
            "driver": value.get("driver"),
            "driver_opts": value.get("driver_opts") or {},
            "labels": as_mapping(value.get("labels"), path, "%s.%s.labels" % (kind, key)),
        }
        if kind == "networks":
            result[str(key)]["ipam"] = parse_ipam(value.get("ipam"), "%s: networks.%s.ipam" % (path, key))
    return result
