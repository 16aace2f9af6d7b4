# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every registration of one registrator shares: its node name, address, tags and filters."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

from .attributes import is_duration

DEFAULT_CHECK_INTERVAL = "10s"  # registrator's default
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass
class Settings:
    """What every registration of this registrator shares."""

    node: str
    ip: str
    tags: tuple[str, ...] = ()
    explicit: bool = False
    require_label: str | None = None  # KEY or KEY=VALUE: only containers with that label
    check_interval: str = DEFAULT_CHECK_INTERVAL

    def __post_init__(self) -> None:
        if not self.node or not _HOST_RE.match(self.node):
            raise FlowError("node=%r is not valid: use letters, digits, '.', '_' and '-'." % self.node)
        if not valid_address(self.ip):
            raise FlowError("ip=%r is not an IP address or host name." % self.ip)
        if not is_duration(self.check_interval):
            raise FlowError("check interval %r is not a duration such as 10s or 1m." % self.check_interval)
        self.tags = tuple(tag for tag in (t.strip() for t in self.tags) if tag)

    def wants(self, labels: dict[str, str]) -> bool:
        if not self.require_label:
            return True
        key, sep, value = self.require_label.partition("=")
        return key in labels and (not sep or labels[key] == value)


def valid_address(text: str | None) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(text) and bool(_HOST_RE.match(text)) and not text.startswith("-")
