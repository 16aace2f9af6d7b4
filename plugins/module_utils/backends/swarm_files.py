# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets and configs of Swarm services: Docker secrets and configs named per content digest.

A Swarm secret or config cannot change, and a service names the one it mounts. So each content
gets its own object, ``<project>_<key>_<digest12>``: a release whose secret changed mounts a new
one, and the previous release (which a rollback scales back up) still mounts the old one. An
object of the project that no service mounts any more is removed before new ones are made; the
engine refuses to remove one that a service (running or scaled to 0) still names, and that
refusal is what keeps it. The content goes to the engine only; names and labels carry the digest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_files import DEFAULT_MODE
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import file_data
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_PROJECT

try:
    import docker.errors

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import FileMountSpec

LABEL_FILE = "dockerflow.file"  # the key under the top-level secrets/configs an object was made from
NAME_MAX = 64  # Swarm's limit for secret and config names
DIGEST_LENGTH = 12
_API = {  # kind -> (list, create, remove, the reference's ID and name keys, the ContainerSpec key)
    "secrets": ("secrets", "create_secret", "remove_secret", "SecretID", "SecretName", "Secrets"),
    "configs": ("configs", "create_config", "remove_config", "ConfigID", "ConfigName", "Configs"),
}


def object_name(project: str, key: str, digest: str) -> str:
    """The Swarm secret or config of one content of ``key``: ``<project>_<key>_<digest12>``."""
    name = "%s_%s_%s" % (project, key, digest[:DIGEST_LENGTH])
    if len(name) > NAME_MAX:
        raise FlowError(
            "%s is too long for a Swarm secret or config name (%d characters, at most %d): shorten the project "
            "name or the key %s." % (name, len(name), NAME_MAX, key)
        )
    return name


def file_reference(kind: str, mount: FileMountSpec, object_id: str, name: str) -> dict[str, Any]:
    """One entry of a ContainerSpec's ``Secrets`` or ``Configs``, at the target Compose gives."""
    _list, _create, _remove, id_key, name_key, _spec_key = _API[kind]
    return {
        "File": {"Name": mount.target, "UID": mount.uid or "0", "GID": mount.gid or "0",
                 "Mode": DEFAULT_MODE if mount.mode is None else mount.mode},
        id_key: object_id,
        name_key: name,
    }


class SwarmFiles:
    """The secrets and configs half of the Swarm backend (needs ``api`` and ``_call``)."""

    api: Any
    _call: Callable[..., Any]  # EngineBackend's: an engine call whose errors become one FlowError line

    def file_references(self, spec: ServiceSpec, project: str, compose_project: ComposeProject | None) -> dict[str, Any]:
        """``Secrets`` and ``Configs`` of ``spec``'s ContainerSpec, their objects made when missing (empty: none)."""
        result = {}
        for kind in ("secrets", "configs"):
            if compose_project is None:
                continue
            declared = getattr(compose_project, kind)
            wanted = {}
            for mount in getattr(spec, kind):
                resource = declared[mount.source]
                wanted[mount.target] = (mount, (resource.name or mount.source) if resource.external
                                        else object_name(project, mount.source, mount.digest or ""))
            # Also when this release mounts none: the objects of one that did must not stay forever.
            self._prune_objects(kind, project, {name for _mount, name in wanted.values()})
            if not wanted:
                continue
            references = []
            for mount, name in wanted.values():
                resource = declared[mount.source]
                object_id = self._object_id(kind, name)
                if object_id is None and resource.external:
                    raise FlowError("%s is external, but the Swarm has no %s named %s: create it first."
                                    % (resource.where, kind[:-1], name))
                if object_id is None:
                    object_id = self._create_object(kind, name, file_data(resource, compose_project.variables),
                                                    dict(resource.labels, **{LABEL_PROJECT: project, LABEL_FILE: mount.source}))
                references.append(file_reference(kind, mount, object_id, name))
            result[_API[kind][5]] = references
        return result

    def _object_id(self, kind: str, name: str) -> str | None:
        listing = getattr(self.api, _API[kind][0])
        found = self._call("listing Swarm %s" % kind, listing, filters={"name": name})
        return next((entry["ID"] for entry in found if entry["Spec"]["Name"] == name), None)

    def _create_object(self, kind: str, name: str, data: bytes, labels: dict[str, str]) -> str:
        create = getattr(self.api, _API[kind][1])
        return self._call("creating Swarm %s %s" % (kind[:-1], name), create, name, data, labels=labels)["ID"]

    def _prune_objects(self, kind: str, project: str, keep: set[str]) -> None:
        """Remove the project's objects of ``kind`` but ``keep``; the engine refuses (and so keeps) those in use."""
        listing, _create, remove = (getattr(self.api, method) for method in _API[kind][:3])
        found = self._call("listing Swarm %s" % kind, listing, filters={"label": "%s=%s" % (LABEL_PROJECT, project)})
        for entry in found:
            if LABEL_FILE in (entry["Spec"].get("Labels") or {}) and entry["Spec"]["Name"] not in keep:
                try:
                    remove(entry["ID"])
                except docker.errors.APIError:
                    pass  # in use by a service: a release that may run again
