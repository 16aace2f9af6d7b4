# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project's named resources: the top-level ``networks``, ``volumes``, ``secrets`` and ``configs`` sections.

Other top-level resource sections (and the options of these) belong here too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
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


# Compose's own keys of a secret or config; ``content`` is a config's only (the value would sit in the file).
_FILE_RESOURCE_KEYS = {
    "secrets": frozenset(["name", "file", "environment", "external", "labels"]),
    "configs": frozenset(["name", "file", "environment", "content", "external", "labels"]),
}


@dataclass
class FileResource:
    """One top-level secret or config: where its content comes from (never the content of a secret)."""

    key: str
    kind: str  # secrets | configs
    name: str | None = None  # the external Swarm object's name
    file: str | None = None  # absolute path
    environment: str | None = None  # the variable that holds the content
    content: str | None = field(default=None, repr=False)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return "%s.%s" % (self.kind, self.key)


def top_level_files(section: Any, path: str, kind: str, directory: str) -> dict[str, FileResource]:
    """``secrets`` or ``configs`` (``kind``): key -> FileResource; a ``file`` is made absolute from ``directory``."""
    result: dict[str, FileResource] = {}
    if section is None:
        return result
    if not isinstance(section, dict):
        raise FlowError("%s: top-level %s must be a mapping." % (path, kind))
    allowed = _FILE_RESOURCE_KEYS[kind]
    for key, value in section.items():
        if not isinstance(value, dict):
            raise FlowError("%s: %s.%s must be a mapping." % (path, kind, key))
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise FlowError("%s: %s.%s: key(s) %s are not supported (supported: %s)."
                            % (path, kind, key, ", ".join(unknown), ", ".join(sorted(allowed))))
        sources = [source for source in ("file", "environment", "content") if value.get(source) is not None]
        sources += ["external"] if value.get("external") else []
        if len(sources) != 1:
            raise FlowError("%s: %s.%s needs exactly one of file, environment%s or external (found: %s)."
                            % (path, kind, key, ", content" if kind == "configs" else "", ", ".join(sources) or "none"))
        external = value.get("external")
        result[str(key)] = FileResource(
            key=str(key),
            kind=kind,
            name=(external.get("name") if isinstance(external, dict) else None) or value.get("name"),
            file=os.path.normpath(os.path.join(directory, os.path.expanduser(str(value["file"])))) if value.get("file") else None,
            environment=str(value["environment"]) if value.get("environment") else None,
            content=str(value["content"]) if value.get("content") is not None else None,
            external=bool(external),
            labels=as_mapping(value.get("labels"), path, "%s.%s.labels" % (kind, key)),
        )
    return result


def file_data(resource: FileResource, variables: dict[str, str]) -> bytes:
    """The content of a secret or config that is not external; the error names the source, never the value."""
    if resource.file is not None:
        try:
            with open(resource.file, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise FlowError("%s: cannot read file %s: %s." % (resource.where, resource.file, exc.strerror or exc))
    if resource.environment is not None:
        if resource.environment not in variables:
            raise FlowError("%s: environment variable %s is not set." % (resource.where, resource.environment))
        return variables[resource.environment].encode("utf-8")
    if resource.content is not None:
        return resource.content.encode("utf-8")
    raise FlowError("%s is external: its content is in Swarm only." % resource.where)


def file_digest(data: bytes) -> str:
    """What stands for a secret's value in specs, hashes and names: its SHA-256, in hex."""
    return hashlib.sha256(data).hexdigest()
