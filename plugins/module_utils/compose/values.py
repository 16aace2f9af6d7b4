# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The value forms Compose uses in many keys: lists or mappings, durations, sizes, whole numbers.

Each parser takes ``where`` (the file, service and key being read) so its error names the
place in the file; every section reader (services, ports, mounts, deploy) shares these.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

# Go's units, and the day and week Compose's pull_policy every_<duration> also takes (every_2d).
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d|w)")
_DURATION_UNITS_NS = {"us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
                      "w": 7 * 86400 * 10**9}
_BYTES_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def as_list(value: Any) -> list[Any]:
    """A key that takes one item or a list of them, as a list (None: empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def as_mapping(value: Any, path: str, key: str, lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """environment/labels in list (K=V) or mapping form, as a dict of strings.

    A bare ``NAME`` item takes its value from ``lookup`` and is left out when
    ``lookup`` lacks it, as Compose does for environment; without ``lookup``
    (labels) it gets an empty value.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): ("" if v is None else scalar_text(v)) for k, v in value.items()}
    if isinstance(value, list):
        result = {}
        for item in value:
            text = str(item)
            if "=" in text:
                k, v = text.split("=", 1)
                result[k] = v
            elif lookup is None:
                result[text] = ""
            elif text in lookup:
                result[text] = lookup[text]
        return result
    raise FlowError("%s: %s must be a list or a mapping." % (path, key))


def scalar_text(value: Any) -> str:
    """A YAML scalar as Compose writes it into a string (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mapping_section(value: Any, where: str) -> dict[str, Any]:
    """A section that must be a mapping (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FlowError("%s must be a mapping." % where)
    return value


def checked_section(value: Any, allowed: Collection[str], where: str) -> dict[str, Any]:
    """A mapping section (None: empty) whose keys must be ``allowed``."""
    section = mapping_section(value, where)
    only_keys(section, allowed, where)
    return section


def only_keys(value: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    """Refuse, naming them, the keys of ``value`` that are not ``allowed``."""
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise FlowError(
            "%s: key(s) %s are not supported. Supported: %s." % (where, ", ".join(unknown), ", ".join(sorted(allowed)))
        )


def one_of(value: Any, allowed: Collection[str], where: str) -> Any:
    """``value`` when it is one of ``allowed``; ``where`` ends with the key (``...deploy.endpoint_mode``)."""
    if value not in allowed:
        raise FlowError("%s=%r is not one of %s." % (where, value, ", ".join(allowed)))
    return value


def whole_number(value: Any, where: str, minimum: int = 1) -> int | None:
    """A whole number of ``minimum`` or more (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not re.match(r"^[0-9]+$", str(value).strip()) or int(value) < minimum:
        raise FlowError("%s=%r is not valid: use a whole number of %d or more." % (where, value, minimum))
    return int(value)


def parse_duration_ns(value: Any, where: str) -> int | None:
    """Compose durations (``1m30s``, ``500ms``, or a number of seconds) in nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 10**9)
    text = str(value).strip()
    if not text or _DURATION_RE.sub("", text) != "":
        raise FlowError("%s=%r is not a duration (examples: 10s, 1m30s, 500ms)." % (where, value))
    return sum(int(float(number) * _DURATION_UNITS_NS[unit]) for number, unit in _DURATION_RE.findall(text))


def parse_bytes(value: Any, where: str) -> int:
    """Compose byte values: ``512m``, ``1.5gb``, ``1024`` (units of 1024, as Compose reads them)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _BYTES_RE.match(str(value).strip())
    if not match or float(match.group(1)) <= 0:
        raise FlowError("%s=%r is not a size (examples: 512m, 1g, 1048576)." % (where, value))
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])
