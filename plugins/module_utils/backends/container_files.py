# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets and configs of plain containers: files written into a container before it starts, pure.

Compose bind-mounts a secret's file from the host it runs on. Flow often talks to a remote engine
(docker_host), whose host has neither the file nor the variable nor the ``content``, and a bind
mount cannot give the file the uid/gid/mode the Compose file asks for. So each file is put into
the created container (put_archive, before it starts) with its owner and mode, at Compose's path:
that works on any engine and honours uid, gid and mode. The price: the file is in the container's
writable layer, not a read-only mount; its default mode 0444 (owner root) keeps a non-root process
from changing it. A container with ``read_only: true`` cannot take such files (the engine refuses
to write to a read-only root filesystem): refused in one line.

The content is read from the project here and goes to the engine only, never into labels,
results or messages; the label ``dockerflow.files`` lists the paths, so a clone (scale, which has
no Compose file) copies the files from its template.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import file_data
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec

LABEL_FILES = "dockerflow.files"
DEFAULT_MODE = 0o444  # Compose's default for secrets and configs


def files_archive(spec: ServiceSpec, compose_project: ComposeProject | None) -> bytes | None:
    """A tar of ``spec``'s secrets and configs at their targets (to put at ``/``); None when it has none."""
    files = [(compose_project.secrets if kind == "secrets" else compose_project.configs, mount)
             for kind in ("secrets", "configs") for mount in getattr(spec, kind)] if compose_project else []
    if not files:
        return None
    if spec.read_only:
        raise FlowError(
            "service %s: secrets and configs on backend container are written into the container before it starts, "
            "which read_only: true forbids; remove read_only, or use backend swarm." % spec.name
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for declared, mount in files:
            resource = declared[mount.source]
            if resource.external:
                raise FlowError(
                    "service %s: %s is external, which exists only in Swarm: backend container needs file, environment "
                    "or content." % (spec.name, resource.where)
                )
            data = file_data(resource, compose_project.variables)
            archive.addfile(_file_header(mount.target, len(data), mount.mode, mount.uid, mount.gid), io.BytesIO(data))
    return buffer.getvalue()


def _file_header(target: str, size: int, mode: int | None, uid: str | None, gid: str | None) -> tarfile.TarInfo:
    header = tarfile.TarInfo(target.lstrip("/"))
    header.size = size
    header.mode = DEFAULT_MODE if mode is None else mode
    header.uid = int(uid or 0)
    header.gid = int(gid or 0)
    return header


def files_label(spec: ServiceSpec) -> dict[str, str]:
    """The label that lists the paths of ``spec``'s secrets and configs (none: no label)."""
    targets = [mount.target for mount in spec.secrets + spec.configs]
    return {LABEL_FILES: json.dumps(targets)} if targets else {}


def labelled_targets(labels: dict[str, str]) -> list[str]:
    """The paths a container's ``dockerflow.files`` label lists."""
    try:
        targets = json.loads(labels.get(LABEL_FILES) or "[]")
    except ValueError:
        return []
    return [str(target) for target in targets] if isinstance(targets, list) else []


def retargeted_archive(copies: list[tuple[str, Iterable[bytes]]]) -> bytes:
    """One tar (to put at ``/``) of the files get_archive returned, each (target, its tar stream) at its full path."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for target, stream in copies:
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as single:
                member = single.getmembers()[0]
                data = single.extractfile(member)
                member.name = target.lstrip("/")
                archive.addfile(member, data)
    return buffer.getvalue()
