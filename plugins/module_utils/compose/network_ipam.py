# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A top-level network's ``ipam`` section, in the Engine API's form (create_network's ``ipam``)."""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_mapping, checked_section

IPAM_KEYS = frozenset(["driver", "config", "options"])
IPAM_POOL_KEYS = {"subnet": "Subnet", "ip_range": "IPRange", "gateway": "Gateway", "aux_addresses": "AuxiliaryAddresses"}


def parse_ipam(value: Any, where: str) -> dict[str, Any] | None:
    """``{driver, config: [{subnet, ip_range, gateway, aux_addresses}], options}`` as the engine's IPAM; None when unset."""
    if value is None:
        return None
    section = checked_section(value, IPAM_KEYS, where)
    pools = []
    for index, pool in enumerate(section.get("config") or []):
        here = "%s.config[%d]" % (where, index)
        pool = checked_section(pool, IPAM_POOL_KEYS, here)
        entry: dict[str, Any] = {IPAM_POOL_KEYS[key]: str(pool[key]) for key in ("subnet", "ip_range", "gateway") if key in pool}
        if "aux_addresses" in pool:
            entry["AuxiliaryAddresses"] = as_mapping(pool["aux_addresses"], here, "aux_addresses")
        pools.append(entry)
    return {
        "Driver": str(section.get("driver") or "default"),
        "Config": pools,
        "Options": as_mapping(section.get("options"), where, "options") or None,
    }
