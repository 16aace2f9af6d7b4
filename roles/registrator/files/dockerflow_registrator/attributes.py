# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's ``SERVICE_*`` attributes, as registrator read them, and their values."""

from __future__ import annotations

import re
from typing import Any

_TRUE = ("1", "true", "yes", "on", "y", "t")
# A Go duration, as Consul takes them: 10s, 1m30s, 500ms.
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+$")
_PREFIX = "SERVICE_"


def service_attributes(config: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(general, per_port) SERVICE_* attributes, lower-cased without the prefix.

    ``SERVICE_8080_NAME`` goes to ``per_port["8080"]["name"]``. The environment is read
    first and labels override it, as registrator did.
    """
    pairs = []
    for item in config.get("Env") or []:
        key, sep, value = item.partition("=")
        if sep:
            pairs.append((key, value))
    pairs.extend((config.get("Labels") or {}).items())
    general: dict[str, str] = {}
    per_port: dict[str, dict[str, str]] = {}
    for key, value in pairs:
        if not key.startswith(_PREFIX) or len(key) == len(_PREFIX):
            continue
        attribute = key[len(_PREFIX):].lower()
        head, sep, rest = attribute.partition("_")
        if head.isdigit() and sep and rest:
            per_port.setdefault(str(int(head)), {})[rest] = value
        else:
            general[attribute] = value
    return general, per_port


def truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in _TRUE


def is_duration(text: str) -> bool:
    return bool(_DURATION_RE.match(text))


def split_tags(text: str | None) -> list[str]:
    return [tag.strip() for tag in (text or "").split(",") if tag.strip()]
