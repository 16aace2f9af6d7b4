# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a Compose file: YAML, variables, the top-level check and ``extends``.

The result is a ComposeProject of raw (interpolated, extends-resolved) service dicts; a
service's spec is built only when the flow asks for it (``ComposeProject.service``).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.env_files import project_variables
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.include import include_entries, merge_included
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.interpolation import interpolate
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import top_level_files, top_level_resources
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.services import MODEL_RUNNER_REFUSAL
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list, as_mapping
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError, yaml_error

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

SUPPORTED_TOP_KEYS = frozenset(["version", "name", "include", "services", "networks", "volumes", "secrets", "configs"])
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# Extends merge rules, as Compose documents them: mappings merge, sequences add up.
_LIST_OR_MAPPING = ("environment", "labels")
_NESTED_MAPPINGS = ("healthcheck", "logging", "deploy")
_CONCATENATED_LISTS = ("ports", "expose", "volumes", "env_file", "label_file", "extra_hosts", "tmpfs", "cap_add", "cap_drop")
# Never inherited through extends, as in Compose.
_NOT_INHERITED = ("depends_on", "container_name")


def load_project(
    compose_path: str,
    project_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    env_files: list[str] | None = None,
    profiles: list[str] | None = None,
    project_directory: str | None = None,
    _including: tuple[str, ...] = (),
) -> ComposeProject:
    """Read, interpolate and check ``compose_path``; service specs are built on demand.

    ``env_files`` (relative to the project directory) replace its ``.env``, as ``--env-file`` does;
    ``profiles``: the active ones; ``project_directory``: where relative paths start (default: the
    file's directory); ``_including``: the files that include this one (``include`` cycles).
    """
    if not HAS_YAML:  # pragma: no cover
        raise FlowError("PyYAML is required to read compose files.")
    path = os.path.abspath(compose_path)
    data = load_yaml(path, "include" if _including else "compose_path")
    directory = os.path.abspath(project_directory or os.path.dirname(path))
    variables = project_variables(directory, os.environ if environ is None else environ, env_files)
    data = interpolate(data, variables, path)
    _check_top_level(data, path)
    raw_services = data.get("services") or {}
    if not isinstance(raw_services, dict):
        raise FlowError("%s: services must be a mapping." % path)
    services = {}
    for name in raw_services:
        if not _NAME_RE.match(str(name)):
            raise FlowError("%s: service name %r is not valid." % (path, name))
        services[str(name)] = _resolve_extends(raw_services, path, name, variables)
    project = ComposeProject(
        path=path,
        directory=directory,
        name=project_name or data.get("name"),
        services=services,
        networks=top_level_resources(data.get("networks"), path, "networks"),
        volumes=top_level_resources(data.get("volumes"), path, "volumes"),
        variables=variables,
        secrets=top_level_files(data.get("secrets"), path, "secrets", directory),
        configs=top_level_files(data.get("configs"), path, "configs", directory),
        profiles=[str(profile) for profile in profiles or []],
    )
    for entry in include_entries(data.get("include"), os.path.dirname(path), path):
        if entry.path in _including + (path,):
            raise FlowError("%s: include cycle: %s includes %s." % (path, path, entry.path))
        included = load_project(
            entry.path, environ=environ, env_files=entry.env_files, profiles=profiles,
            project_directory=entry.project_directory, _including=_including + (path,),
        )
        merge_included(project, included)
    return project


def load_yaml(path: str, parameter: str) -> dict[str, Any]:
    """The top-level mapping of a Compose file; ``parameter`` names the option that points at it."""
    if not os.path.isfile(path):
        raise FlowError("%s: compose file %s does not exist." % (parameter, path))
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc)
    except OSError as exc:
        raise FlowError("Cannot read compose file %s: %s." % (path, exc.strerror or exc))
    if not isinstance(data, dict):
        raise FlowError("%s is not a Compose file: its top level must be a mapping." % path)
    return data


def _check_top_level(data: Mapping[str, Any], path: str) -> None:
    unknown_top = sorted(k for k in data if k not in SUPPORTED_TOP_KEYS and not str(k).startswith("x-"))
    if "models" in data:
        raise FlowError("%s: top-level models %s." % (path, MODEL_RUNNER_REFUSAL))
    if "services" not in data and "include" not in data:
        raise FlowError("%s has no services section." % path)
    if unknown_top:
        raise FlowError(
            "%s: top-level key(s) %s are not supported (supported: %s)."
            % (path, ", ".join(unknown_top), ", ".join(sorted(SUPPORTED_TOP_KEYS)))
        )


def _resolve_extends(
    services: Mapping[str, Any], path: str, name: str, variables: Mapping[str, str], chain: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Service ``name`` of ``services`` (read from ``path``) with what it extends merged in."""
    raw = services[name]
    if not isinstance(raw, dict):
        raise FlowError("%s: service %r must be a mapping." % (path, name))
    extends = raw.get("extends")
    if extends is None:
        return copy.deepcopy(raw)
    if name in chain:
        raise FlowError("%s: extends cycle at service %r." % (path, name))
    if isinstance(extends, str):
        extends = {"service": extends}
    if not isinstance(extends, dict) or "service" not in extends:
        raise FlowError("%s: service %r: extends needs a service name." % (path, name))
    base_name = extends["service"]
    if extends.get("file"):
        base_path = os.path.join(os.path.dirname(path), extends["file"])
        base_data = interpolate(load_yaml(base_path, "extends.file"), variables, base_path)
        base_services = base_data.get("services", {})
        if base_name not in base_services:
            raise FlowError("%s: service %r extends unknown service %r of %s." % (path, name, base_name, base_path))
        base = _resolve_extends(base_services, base_path, base_name, variables, chain + (name,))
    else:
        if base_name not in services:
            raise FlowError("%s: service %r extends unknown service %r." % (path, name, base_name))
        base = _resolve_extends(services, path, base_name, variables, chain + (name,))
    return _merge_extended(base, raw, path, variables)


def _merge_extended(base: dict[str, Any], raw: Mapping[str, Any], path: str, variables: Mapping[str, str]) -> dict[str, Any]:
    """``raw``'s keys over ``base`` (which is changed and returned), by Compose's merge rules."""
    merged = base
    for key, value in raw.items():
        if key == "extends":
            continue
        if key in _LIST_OR_MAPPING and key in merged:
            lookup = variables if key == "environment" else None
            merged[key] = dict(as_mapping(merged[key], path, key, lookup), **as_mapping(value, path, key, lookup))
        elif key in _NESTED_MAPPINGS and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = dict(merged[key], **value)
        elif key in _CONCATENATED_LISTS and key in merged:
            merged[key] = as_list(merged[key]) + as_list(value)
        else:
            merged[key] = value
    for key in _NOT_INHERITED:
        if key not in raw:
            merged.pop(key, None)
    return merged
