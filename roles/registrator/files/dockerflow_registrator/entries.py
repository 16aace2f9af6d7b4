# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What goes to the agent: one entry a published port, with the marks that make it this node's."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.registration import META_CONTAINER

META_REGISTRATOR = "dockerflow-registrator"  # value: the node (registrator) that made the entry
META_CONTAINER_ID = "dockerflow-container-id"
META_SPEC = "dockerflow-registrator-spec"  # fingerprint of the registration: unchanged ones are not re-sent

__all__ = ["META_CONTAINER", "META_CONTAINER_ID", "META_REGISTRATOR", "META_SPEC", "Mapping", "ServiceEntry"]


@dataclass
class ServiceEntry:
    """One service to register in the agent: one published port of one container."""

    service_id: str
    name: str
    address: str
    port: int
    tags: list[str]
    node: str
    container: str
    container_id: str
    check: dict[str, Any] | None = None
    flow_meta: dict[str, str] = field(default_factory=dict)  # a flow instance's registration meta (registration.py)

    def meta(self) -> dict[str, str]:
        return dict(
            self.flow_meta,
            **{META_REGISTRATOR: self.node, META_CONTAINER: self.container, META_CONTAINER_ID: self.container_id},
        )

    def _payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "ID": self.service_id,
            "Name": self.name,
            "Address": self.address,
            "Port": self.port,
            "Tags": list(self.tags),
            "Meta": self.meta(),
        }
        if self.check:
            payload["Check"] = dict(self.check)
        return payload

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self._payload(), sort_keys=True).encode()).hexdigest()[:16]

    def payload(self) -> dict[str, Any]:
        """The body of PUT /v1/agent/service/register."""
        payload = self._payload()
        payload["Meta"][META_SPEC] = self.fingerprint()
        return payload


@dataclass
class Mapping:
    """What one container maps to: its entries, or why it has none, and what was wrong."""

    entries: list[ServiceEntry] = field(default_factory=list)
    skipped: str | None = None
    warnings: list[str] = field(default_factory=list)
