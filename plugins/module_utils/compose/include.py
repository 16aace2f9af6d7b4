# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The top-level ``include``: other Compose files whose services and resources join the project.

Each entry is a path, or ``{path, project_directory, env_file}``. An included file is read as a
project of its own (its variables from its ``env_file`` or its project directory's ``.env``, its
relative paths from its project directory), then its services, networks, volumes, secrets and
configs are added to the including project. As in Compose, a service both files define is an
error, and so is a resource both define differently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list, only_keys
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject

_INCLUDE_KEYS = ("path", "project_directory", "env_file")
_MERGED_RESOURCES = ("networks", "volumes", "secrets", "configs")


@dataclass
class IncludeEntry:
    """One ``include`` entry, its paths absolute."""

    path: str
    project_directory: str | None  # None: the included file's directory
    env_files: list[str] | None  # None: the project directory's .env


def include_entries(value: Any, directory: str, where: str) -> list[IncludeEntry]:
    """The entries of the ``include`` of a file in ``directory``; relative paths are from that directory."""
    entries = []
    for index, item in enumerate(as_list(value)):
        here = "%s: include[%d]" % (where, index)
        if isinstance(item, dict):
            only_keys(item, _INCLUDE_KEYS, here)
            paths, project_directory, env_files = as_list(item.get("path")), item.get("project_directory"), item.get("env_file")
        else:
            paths, project_directory, env_files = [item], None, None
        if len(paths) != 1 or not isinstance(paths[0], str) or not paths[0]:
            raise FlowError(
                "%s: path must be one Compose file (several files merged as overrides are not supported: "
                "include them one by one)." % here
            )
        entries.append(
            IncludeEntry(
                path=os.path.abspath(os.path.join(directory, os.path.expanduser(paths[0]))),
                project_directory=os.path.join(directory, str(project_directory)) if project_directory else None,
                env_files=[os.path.join(directory, str(path)) for path in as_list(env_files)] or None,
            )
        )
    return entries


def merge_included(project: ComposeProject, included: ComposeProject) -> None:
    """Add ``included``'s services and resources to ``project`` (changed in place)."""
    for name, raw in included.services.items():
        if name in project.services:
            raise FlowError(
                "%s: service %r is also defined by the included file %s; Compose refuses the conflict: rename one."
                % (project.path, name, included.path)
            )
        project.services[name] = raw
        project.service_directories[name] = included.service_directories.get(name, included.directory)
    for kind in _MERGED_RESOURCES:
        ours, theirs = getattr(project, kind), getattr(included, kind)
        for key, resource in theirs.items():
            if key in ours and ours[key] != resource:
                raise FlowError(
                    "%s: %s.%s is defined differently by the included file %s; Compose refuses the conflict."
                    % (project.path, kind, key, included.path)
                )
            ours[key] = resource
