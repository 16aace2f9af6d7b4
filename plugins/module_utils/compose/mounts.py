# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's ``volumes`` (bind mounts, named volumes and tmpfs) and its ``secrets`` and ``configs``.

Anything else mounted into an instance's filesystem belongs here too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import file_data, file_digest
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import FileMountSpec, MountSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject

_VOLUME_MODES = ("ro", "rw", "z", "Z")
_FILE_REFERENCE_KEYS = frozenset(["source", "target", "uid", "gid", "mode"])
SECRETS_DIRECTORY = "/run/secrets"


def service_mounts(project: ComposeProject, raw: dict[str, Any], where: str, directory: str) -> list[MountSpec]:
    """The service's ``volumes``; bind sources are made absolute from ``directory`` (its project directory)."""
    mounts = []
    for item in as_list(raw.get("volumes")):
        if isinstance(item, dict):
            kind = item.get("type", "volume")
            target = item.get("target")
            source = item.get("source")
            read_only = bool(item.get("read_only", False))
        else:
            kind, source, target, read_only = _short_volume(item, where)
        if not target or not str(target).startswith("/"):
            raise FlowError("%s: volume %r needs an absolute container path." % (where, item))
        if kind == "bind":
            if not source:
                raise FlowError("%s: bind volume %r needs a source path." % (where, item))
            source = os.path.normpath(os.path.join(directory, os.path.expanduser(source)))
        elif kind == "volume" and source:
            if source not in project.volumes:
                raise FlowError("%s: named volume %r is not declared under the top-level volumes key." % (where, source))
        elif kind not in ("volume", "tmpfs"):
            raise FlowError("%s: volume type %r is not supported (bind, volume, tmpfs)." % (where, kind))
        mounts.append(MountSpec(kind=kind, target=str(target), source=source, read_only=read_only))
    return mounts


def _short_volume(item: Any, where: str) -> tuple[str, str | None, str, bool]:
    """``[SOURCE:]TARGET[:MODE]`` as (kind, source, target, read_only); a path-like source is a bind."""
    parts = str(item).split(":")
    read_only = False
    if len(parts) == 1:
        source, target = None, parts[0]
    elif len(parts) in (2, 3):
        source, target = parts[0], parts[1]
        if len(parts) == 3:
            modes = parts[2].split(",")
            unknown = [m for m in modes if m not in _VOLUME_MODES]
            if unknown:
                raise FlowError("%s: volume %r has unknown mode(s) %s." % (where, item, ",".join(unknown)))
            read_only = "ro" in modes
    else:
        raise FlowError("%s: volume %r is not SOURCE:TARGET[:MODE]." % (where, item))
    kind = "bind" if source and (source[0] in "./~") else "volume"
    return kind, source, target, read_only


def service_files(project: ComposeProject, raw: dict[str, Any], where: str, kind: str) -> list[FileMountSpec]:
    """The service's ``secrets`` or ``configs`` (``kind``), short (``- name``) or long form, at Compose's paths.

    A secret goes to /run/secrets/<source> (a relative target is under /run/secrets), a config to
    /<source>. The content is read here for its digest only; the backends read it again to mount it.
    """
    declared = project.secrets if kind == "secrets" else project.configs
    result = []
    for item in as_list(raw.get(kind)):
        entry = item if isinstance(item, dict) else {"source": item}
        unknown = sorted(set(entry) - _FILE_REFERENCE_KEYS)
        if unknown:
            raise FlowError("%s: %s key(s) %s are not supported (supported: %s)."
                            % (where, kind, ", ".join(unknown), ", ".join(sorted(_FILE_REFERENCE_KEYS))))
        source = str(entry.get("source") or "")
        if source not in declared:
            raise FlowError("%s: %s %r is not declared under the top-level %s key." % (where, kind, source, kind))
        resource = declared[source]
        target = str(entry.get("target") or source)
        if not target.startswith("/"):
            target = "%s/%s" % (SECRETS_DIRECTORY, target) if kind == "secrets" else "/" + target
        result.append(FileMountSpec(
            source=source,
            target=os.path.normpath(target),
            uid=_numeric_id(entry.get("uid"), where, kind, "uid"),
            gid=_numeric_id(entry.get("gid"), where, kind, "gid"),
            mode=_file_mode(entry.get("mode"), where, kind),
            digest=None if resource.external else file_digest(file_data(resource, project.variables)),
        ))
    return result


def _numeric_id(value: Any, where: str, kind: str, key: str) -> str | None:
    if value is None:
        return None
    if not str(value).isdigit():
        raise FlowError("%s: %s %s=%r is not a numeric ID." % (where, kind, key, value))
    return str(value)


def _file_mode(value: Any, where: str, kind: str) -> int | None:
    """``mode`` as YAML gives it: 0440 (an octal int already), or the string "0440" (octal)."""
    if value is None:
        return None
    try:
        mode = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise FlowError("%s: %s mode=%r is not a file mode (an octal number such as 0440)." % (where, kind, value))
    return mode
