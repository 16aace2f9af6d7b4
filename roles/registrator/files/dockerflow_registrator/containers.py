# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's registrations: its inspect data (``GET /containers/{id}/json``) read by
registrator's ``SERVICE_*`` conventions, one entry a published port.

The flow's instances (labelled ``dockerflow.service``) are either the flow's to register or,
for Swarm tasks, registered the flow's way (``flow_instances``).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_REGISTER_PORT, LABEL_SERVICE

from .attributes import service_attributes, split_tags, truthy
from .checks import build_check
from .entries import Mapping, ServiceEntry
from .flow_instances import map_flow_instance
from .ports import PublishedPort, published_ports
from .settings import Settings


def map_container(inspect: dict[str, Any], settings: Settings) -> Mapping:
    """Container inspect data (``GET /containers/{id}/json``) -> its registrations."""
    config = inspect.get("Config") or {}
    labels = config.get("Labels") or {}
    state = inspect.get("State") or {}
    name = (inspect.get("Name") or "").lstrip("/") or inspect.get("Id", "")[:12]
    if LABEL_SERVICE in labels and LABEL_REGISTER_PORT not in labels:
        return Mapping(skipped="labelled %s (the flow modules register it)" % LABEL_SERVICE)
    if LABEL_SERVICE not in labels and not settings.wants(labels):
        return Mapping(skipped="no label %s" % settings.require_label)
    if not state.get("Running") or state.get("Paused"):
        return Mapping(skipped="not running")
    if LABEL_SERVICE in labels:
        return map_flow_instance(inspect, name, labels, settings)
    general, per_port = service_attributes(config)
    if truthy(general.get("ignore")) and not any("ignore" in attrs for attrs in per_port.values()):
        return Mapping(skipped="SERVICE_IGNORE is set")
    ports = published_ports(inspect)
    if not ports:
        return Mapping(skipped="publishes no port")
    naming = _Naming(general, image_basename(config.get("Image")), container=name, grouped=len(ports) > 1)
    mapping = Mapping()
    for port in ports:
        port_attributes = per_port.get(port.number, {})
        attributes = dict(general, **port_attributes)
        if truthy(attributes.get("ignore")):
            continue
        if settings.explicit and not attributes.get("name"):
            continue
        mapping.entries.append(
            ServiceEntry(
                service_id=naming.service_id(port, port_attributes, settings.node),
                name=naming.service(port, port_attributes, attributes),
                address=port.registered_address(settings.ip),
                port=port.host_port,
                tags=_tags(port, attributes, settings),
                node=settings.node,
                container=name,
                container_id=inspect.get("Id", ""),
                check=build_check(attributes, port.registered_address(settings.ip), port.host_port, settings,
                                  mapping.warnings),
            )
        )
    if not mapping.entries:
        mapping.skipped = "every published port is ignored" if not settings.explicit else "no port has a SERVICE_NAME"
    return mapping


class _Naming:
    """The service name and ID of each published port of one container: a port's own
    ``SERVICE_<port>_NAME`` / ``_ID`` win over ``SERVICE_NAME`` / ``SERVICE_ID``.
    ``attributes`` are the general ones updated with the port's."""

    def __init__(self, general: dict[str, str], default_name: str, container: str, grouped: bool) -> None:
        self.general = general
        self.default_name = default_name  # the image's basename
        self.container = container
        self.grouped = grouped  # the container publishes several ports: names and IDs get the port

    def service(self, port: PublishedPort, port_attributes: dict[str, str], attributes: dict[str, str]) -> str:
        if port_attributes.get("name"):
            return port_attributes["name"]
        service = attributes.get("name") or self.default_name
        return service + "-" + port.number if self.grouped else service

    def service_id(self, port: PublishedPort, port_attributes: dict[str, str], node: str) -> str:
        if port_attributes.get("id"):
            service_id = port_attributes["id"]
        elif self.general.get("id"):
            service_id = self.general["id"] + (":" + port.number if self.grouped else "")
        else:
            service_id = "%s:%s:%s" % (node, self.container, port.number)
        return service_id if port.proto == "tcp" else service_id + ":" + port.proto


def _tags(port: PublishedPort, attributes: dict[str, str], settings: Settings) -> list[str]:
    tags = list(settings.tags) + split_tags(attributes.get("tags"))
    if port.proto != "tcp":
        tags.append(port.proto)
    return _unique(tags)


def image_basename(image: str | None) -> str:
    """``registry:5000/team/books-ms:1.2`` -> ``books-ms`` (registrator's default name)."""
    base = (image or "").split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return base.split(":", 1)[0] or "container"


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
