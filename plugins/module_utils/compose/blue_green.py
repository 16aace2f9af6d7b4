# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service keys a blue-green target cannot have, each refused in one line with why and what instead.

A target runs several instances, and two colors side by side while the new one is checked; a
key that pins something to one instance (a name, the host's network, another container's
network) cannot hold for that. Side targets run one instance and may use these keys.
"""

from __future__ import annotations

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import FIXED_ADDRESS_KEYS, ServiceSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def refuse_for_blue_green(spec: ServiceSpec, parameter: str = "target") -> None:
    """Raise the FlowError of the first key of ``spec`` a blue-green target cannot have."""
    reason = blue_green_refusal(spec)
    if reason:
        raise FlowError("%s %s %s." % (parameter, spec.name, reason))


def blue_green_refusal(spec: ServiceSpec) -> str | None:
    """Why ``spec`` cannot be deployed blue-green (the rest of a sentence), None when it can."""
    mode = spec.engine.network_mode
    if spec.container_name:
        return (
            "sets container_name, which allows one instance only; remove it "
            "(instances are named <project>-<target>-<color>-<n>)"
        )
    fixed = [(key, name) for key, options in spec.networks.items() for name in FIXED_ADDRESS_KEYS
             if options.get(name)]
    if fixed:
        return (
            "sets networks.%s.%s: one address allows one instance, and the new color would need it while the old one "
            "serves; remove it (instances get addresses from the network's ipam)" % fixed[0]
        )
    if mode == "host":
        return (
            "sets network_mode host: every instance of both colors would listen on the same host port, so the new "
            "color could not start while the old one serves; remove network_mode and publish the port under ports"
        )
    if mode and mode.partition(":")[0] in ("service", "container"):
        return (
            "sets network_mode %s: every instance of both colors would share that container's network and port, and "
            "none could publish a port of its own; remove network_mode (join a network under networks instead)" % mode
        )
    if mode == "none" and spec.ports:
        return (
            "sets network_mode none and publishes ports: an instance without a network cannot be reached; remove "
            "network_mode or the ports"
        )
    return None
