# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow's instances (containers labelled ``dockerflow.service``).

Swarm tasks also carry ``dockerflow.register-port``: their registration is the registrator's, and
it is built exactly as the flow builds its own (``registration.Registration``), so an instance
looks the same in Consul whoever registered it. Plain containers are the flow's to register; the
registrator only points the flow's entry at the host port a container publishes after it started
again (``flow_repairs``).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_CHECK_HTTP,
    LABEL_COLOR,
    LABEL_LEGACY_NAMES,
    LABEL_REGISTER_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import (
    LEGACY_ID_SUFFIX,
    META_CHECK_HTTP,
    META_COLOR,
    META_CONTAINER,
    META_PORT,
    META_RELEASE,
    META_SERVICE,
    Registration,
    service_id_for,
)

from .attributes import truthy
from .entries import META_REGISTRATOR, Mapping, ServiceEntry
from .ports import find_port
from .settings import Settings


def map_flow_instance(inspect: dict[str, Any], name: str, labels: dict[str, str], settings: Settings) -> Mapping:
    """A running flow instance whose registration is ours (a Swarm task): its ``Registration``."""
    port = find_port(inspect, labels[LABEL_REGISTER_PORT])
    if port is None:
        return Mapping(skipped="does not publish %s=%s" % (LABEL_REGISTER_PORT, labels[LABEL_REGISTER_PORT]))
    try:
        release = int(labels.get(LABEL_RELEASE) or 0)
    except ValueError:
        return Mapping(skipped="%s=%r is not a number" % (LABEL_RELEASE, labels.get(LABEL_RELEASE)))
    registration = Registration(
        service=labels[LABEL_SERVICE],
        service_id=service_id_for(name),
        address=port.registered_address(settings.ip),
        port=port.host_port,
        color=labels.get(LABEL_COLOR) or "plain",
        release=release,
        container=name,
        check_http_path=labels.get(LABEL_CHECK_HTTP) or None,
        container_port=labels[LABEL_REGISTER_PORT],
        initial_status=None,
    )
    mapping = Mapping()
    for payload in registration.payloads(legacy_names=truthy(labels.get(LABEL_LEGACY_NAMES))):
        mapping.entries.append(
            ServiceEntry(
                service_id=payload["ID"],
                name=payload["Name"],
                address=payload["Address"],
                port=payload["Port"],
                tags=payload["Tags"],
                node=settings.node,
                container=name,
                container_id=inspect.get("Id", ""),
                check=payload["Check"],
                flow_meta=payload["Meta"],
            )
        )
    return mapping


def flow_repairs(inspect: dict[str, Any], services: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Payloads that point the flow's own registrations of this plain container at the host port it
    publishes now ([] when they already do, or are not the flow's).

    The flow registers its plain containers itself, once, with the host port Docker gave them. A
    container that starts again (its restart policy, a daemon restart) gets a new ephemeral port, and
    its registration would send the proxy to whatever took the old one: another instance, another
    service, or nothing. Its check starts critical, as for any instance a registrator sees start.
    """
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    name = (inspect.get("Name") or "").lstrip("/")
    if LABEL_SERVICE not in labels or LABEL_REGISTER_PORT in labels or not (inspect.get("State") or {}).get("Running"):
        return []
    service_id = service_id_for(name)
    entry = services.get(service_id) or {}
    meta = entry.get("Meta") or {}
    if META_REGISTRATOR in meta or meta.get(META_CONTAINER) != name or not meta.get(META_PORT):
        return []  # not the flow's entry, or made by a collection that did not record the container port
    port = find_port(inspect, meta[META_PORT])
    if port is None or port.host_port == entry.get("Port"):
        return []
    try:
        release = int(meta.get(META_RELEASE) or 0)
    except ValueError:
        return []
    registration = Registration(
        service=meta[META_SERVICE], service_id=service_id, address=entry.get("Address") or port.host_ip,
        port=port.host_port, color=meta.get(META_COLOR) or "plain", release=release, container=name,
        check_http_path=meta.get(META_CHECK_HTTP) or None, container_port=meta[META_PORT], initial_status=None,
    )
    return registration.payloads(legacy_names=service_id + LEGACY_ID_SUFFIX in services)
