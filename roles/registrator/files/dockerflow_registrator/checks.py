# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul check of a registration, from the container's ``SERVICE_CHECK_*`` attributes.

A malformed attribute is left out with a warning (the caller logs it once): a registration
with a default in place of a typo is better than none.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.registration import (
    http_check_url,
    tcp_check_address,
)

from .attributes import is_duration, truthy
from .settings import Settings

CHECK_STATUSES = ("passing", "warning", "critical")


def build_check(attributes: dict[str, str], address: str, port: int, settings: Settings,
                warnings: list[str]) -> dict[str, Any] | None:
    """The Consul check of one registration, from its SERVICE_CHECK_* attributes (or None)."""
    check = _check_target(attributes, address, port, warnings)
    if check is None:
        return None
    if "TTL" not in check:
        _add_timing(check, attributes, settings, warnings)
    status = (attributes.get("check_initial_status") or "").strip().lower()
    if status in CHECK_STATUSES:
        check["Status"] = status
    elif status:
        warnings.append("SERVICE_CHECK_INITIAL_STATUS=%r is not one of %s" % (status, ", ".join(CHECK_STATUSES)))
    deregister_after = attributes.get("check_deregister_after")
    if deregister_after and is_duration(deregister_after):
        check["DeregisterCriticalServiceAfter"] = deregister_after
    elif deregister_after:
        warnings.append("SERVICE_CHECK_DEREGISTER_AFTER=%r is not a duration; ignored" % deregister_after)
    return check


def _check_target(attributes: dict[str, str], address: str, port: int, warnings: list[str]) -> dict[str, Any] | None:
    """What the check probes: {"HTTP": url}, {"TCP": address}, {"TTL": duration}, or None."""
    if attributes.get("check_http") or attributes.get("check_https"):
        scheme = "https" if attributes.get("check_https") else "http"
        path = attributes.get("check_https") or attributes["check_http"]
        if not path.startswith("/"):
            path = "/" + path
        check: dict[str, Any] = {"HTTP": http_check_url(address, port, path, scheme)}
        if scheme == "https" and truthy(attributes.get("check_tls_skip_verify")):
            check["TLSSkipVerify"] = True
        return check
    if truthy(attributes.get("check_tcp")):
        return {"TCP": tcp_check_address(address, port)}
    if attributes.get("check_ttl"):
        if not is_duration(attributes["check_ttl"]):
            warnings.append("SERVICE_CHECK_TTL=%r is not a duration; no check registered" % attributes["check_ttl"])
            return None
        return {"TTL": attributes["check_ttl"]}
    for kind in ("check_script", "check_cmd", "check_docker"):
        if attributes.get(kind):
            warnings.append("SERVICE_%s is not supported (script checks are off in most agents); "
                            "use SERVICE_CHECK_HTTP or SERVICE_CHECK_TCP" % kind.upper())
    return None


def _add_timing(check: dict[str, Any], attributes: dict[str, str], settings: Settings, warnings: list[str]) -> None:
    """The interval (the settings' when the attribute is missing or malformed) and the timeout."""
    interval = attributes.get("check_interval") or settings.check_interval
    if not is_duration(interval):
        warnings.append("SERVICE_CHECK_INTERVAL=%r is not a duration; using %s" % (interval, settings.check_interval))
        interval = settings.check_interval
    check["Interval"] = interval
    timeout = attributes.get("check_timeout")
    if timeout and is_duration(timeout):
        check["Timeout"] = timeout
    elif timeout:
        warnings.append("SERVICE_CHECK_TIMEOUT=%r is not a duration; Consul's default is used" % timeout)
