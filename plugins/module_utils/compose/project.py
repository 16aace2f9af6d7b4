# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loaded Compose project: its raw services and resources, and the questions the flow asks of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import FileResource
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.services import normalize_service, parse_depends_on
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import ServiceSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


@dataclass
class ComposeProject:
    path: str
    directory: str
    name: str | None
    services: dict[str, dict[str, Any]]  # name -> raw (interpolated, extends-resolved) dict
    networks: dict[str, dict[str, Any]]  # key -> {"name": str, "external": bool, "driver": str|None}
    volumes: dict[str, dict[str, Any]]  # key -> {"name": str, "external": bool, "driver": str|None}
    variables: dict[str, str] = field(default_factory=dict)  # what ${VAR} and bare environment names resolve from
    secrets: dict[str, FileResource] = field(default_factory=dict)
    configs: dict[str, FileResource] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)  # the active ones ("*": all)
    # the project directory of each service an ``include`` brought in (its relative paths start there)
    service_directories: dict[str, str] = field(default_factory=dict)

    def directory_of(self, name: str) -> str:
        """Where service ``name``'s relative paths start: its included file's project directory, else ours."""
        return self.service_directories.get(name, self.directory)

    def service(self, name: str, parameter: str = "target") -> ServiceSpec:
        """The spec of service ``name``; ``parameter`` is the option that named it, for the error."""
        if name not in self.services:
            raise FlowError(
                "%s %r is not a service of %s. Services: %s."
                % (parameter, name, self.path, ", ".join(sorted(self.services)) or "none")
            )
        self._check_profiles(name, parameter)
        return normalize_service(self, name)

    def _check_profiles(self, name: str, parameter: str) -> None:
        """A service with ``profiles`` runs only when one of them is active, as in Compose."""
        wanted = [str(profile) for profile in as_list(self.services[name].get("profiles"))]
        if wanted and "*" not in self.profiles and not set(wanted) & set(self.profiles):
            raise FlowError(
                "%s %r is in profile(s) %s, none of them active: activate one with the profiles option (or "
                "COMPOSE_PROFILES)." % (parameter, name, ", ".join(wanted))
            )

    def dependencies(self, name: str) -> list[str]:
        """Services ``name`` depends on, transitively, dependencies first."""
        ordered: list[str] = []
        seen: set[str] = set()

        def visit(service: str, chain: list[str]) -> None:
            if service in chain:
                raise FlowError("%s: depends_on cycle: %s." % (self.path, " -> ".join(chain + [service])))
            if service in seen:
                return
            if service not in self.services:
                raise FlowError("%s: service %r depends on unknown service %r." % (self.path, chain[-1], service))
            for dep in parse_depends_on(self.services[service], self.path, service):
                visit(dep, chain + [service])
            seen.add(service)
            ordered.append(service)

        for dep in parse_depends_on(self.services[name], self.path, name):
            visit(dep, [name])
        return ordered
