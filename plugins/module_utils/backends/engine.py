# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the container and the Swarm backend do alike on one engine: errors, images (built: ``image_build``),
networks, side targets."""

from __future__ import annotations

import datetime
import re
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Backend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import short_error
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.image_build import ImageBuilds
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_NETWORK, LABEL_PROJECT

try:
    import docker.errors
    import requests.exceptions

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec

PULL_POLICIES = ("always", "missing", "never", "refresh")
# Docker's words for a host port another process or container holds.
_BUSY_PORT_RE = re.compile(
    r"(?:listen tcp[46]? |Bind for )(?P<address>\S+?):? (?:failed: )?(?:bind: )?(?P<reason>address already in use|"
    r"port is already allocated)"
)
Result = TypeVar("Result")


class EngineBackend(ImageBuilds, Backend):
    """What both backends do alike on one engine: error translation, images, networks."""

    NETWORK_DRIVER: str | None = None  # None: the engine's default (bridge)
    NETWORK_OPTIONS: Mapping[str, Any] = types.MappingProxyType({})  # more arguments of create_network

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api = client.api
        self.base_url: str = self.api.base_url

    # -- error translation -------------------------------------------------
    def _call(self, what: str, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """``function(*args, **kwargs)``, its engine errors as one FlowError line saying what was being done."""
        try:
            return function(*args, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise FlowError("%s: image not found: %s." % (what, short_error(exc)))
        except docker.errors.NotFound as exc:
            raise FlowError("%s: not found: %s." % (what, short_error(exc)))
        except docker.errors.APIError as exc:
            explanation = exc.explanation or short_error(exc)
            busy = _BUSY_PORT_RE.search(str(explanation))
            if busy:
                raise FlowError(
                    "%s failed: host port %s is taken (%s). A fixed host port cannot serve two instances or two colors "
                    "at once: publish the container port alone (for example '8080') so Docker picks a free one, or free "
                    "that port." % (what, busy.group("address"), busy.group("reason"))
                )
            raise FlowError("%s failed: %s." % (what, explanation))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host) while %s." % (self.base_url, what))
        except requests.exceptions.Timeout:
            raise FlowError("The Docker engine at %s timed out while %s." % (self.base_url, what))
        except docker.errors.DockerException as exc:
            raise FlowError("%s failed: %s." % (what, short_error(exc)))

    def ping(self) -> None:
        self._call("contacting the engine", self.api.ping)

    # -- images --------------------------------------------------------------
    def resolve_image(
        self, image: str, pull_policy: str, check_mode: bool = False, refresh_after_s: int | None = None
    ) -> tuple[str | None, bool]:
        """Make ``image`` present per ``pull_policy``; return (image id or None, pulled?).

        ``refresh`` (Compose's daily, weekly and every_<duration>) pulls when the engine lacks the image or
        last tagged it (a pull tags it) ``refresh_after_s`` or more seconds ago, as Compose does."""
        if pull_policy not in PULL_POLICIES:
            raise FlowError("pull=%r is not valid: use one of %s." % (pull_policy, ", ".join(PULL_POLICIES)))
        found = self._local_image(image)
        local = found["Id"] if found else None
        fresh = found is not None and pull_policy == "refresh" and _tagged_age_s(found) < (refresh_after_s or 0)
        if pull_policy == "never" or (pull_policy == "missing" and local) or fresh:
            if not local:
                raise FlowError("Image %s is not on the engine and pull is 'never'." % image)
            return local, False
        if check_mode:
            return local, local is None
        try:
            self.api.pull(image)
        except (docker.errors.APIError, docker.errors.DockerException) as exc:
            if local and pull_policy in ("always", "refresh"):
                raise FlowError("Pulling %s failed: %s. Use pull=missing to deploy the local copy." % (image, short_error(exc)))
            raise FlowError("Image %s is not on the engine and pulling it failed: %s." % (image, short_error(exc)))
        return self._local_image_id(image), True

    def _local_image_id(self, image: str) -> str | None:
        found = self._local_image(image)
        return found["Id"] if found else None

    def _local_image(self, image: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise FlowError("Inspecting image %s failed: %s." % (image, exc.explanation or short_error(exc)))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach the Docker engine at %s (docker_host)." % self.base_url)

    def image_has_healthcheck(self, image: str) -> bool:
        data = self._call("inspecting image %s" % image, self.api.inspect_image, image)
        test = ((data.get("Config") or {}).get("Healthcheck") or {}).get("Test")
        return bool(test) and test[0] != "NONE"

    # -- networks ------------------------------------------------------------
    def ensure_networks(self, project: str, compose_project: ComposeProject | None, spec: ServiceSpec) -> dict[str, str]:
        """Create the project networks ``spec`` uses; return compose key -> engine name."""
        names = {}
        for key in spec.networks:
            undeclared = {"name": None, "external": False, "driver": None, "driver_opts": {}, "labels": {}, "ipam": None}
            declared = compose_project.networks.get(key, undeclared)
            name = declared["name"] or "%s_%s" % (project, key)
            names[key] = name
            existing = [net for net in self._call("listing networks", self.api.networks, names=[name]) if net["Name"] == name]
            if existing:
                self._check_network(existing[0], key)
                continue
            if declared["external"]:
                raise FlowError("External network %s (networks.%s) does not exist; create it first." % (name, key))
            labels = dict(declared["labels"], **{LABEL_PROJECT: project, LABEL_NETWORK: key})
            self._call(
                "creating network %s" % name,
                self.api.create_network,
                name,
                driver=declared["driver"] or self.NETWORK_DRIVER,
                options=declared["driver_opts"] or None,
                labels=labels,
                ipam=declared.get("ipam"),
                check_duplicate=True,
                **self.NETWORK_OPTIONS,
            )
        return names

    def _check_network(self, network: dict[str, Any], key: str) -> None:
        """Refuse an existing network the instances cannot join (a backend's own rule)."""

    # -- side targets: found by name, started when stopped, created when missing -------------
    def ensure_side_target(
        self,
        spec: ServiceSpec,
        compose_project: ComposeProject,
        project: str,
        pull: bool,
        publish_address: str,
        check_mode: bool = False,
    ) -> str | None:
        """Start ``spec`` if it is not running; returns 'created', 'started' or None (unchanged)."""
        name = self._side_target_name(spec, project)
        found = self._find_side_target(name)
        if pull and not check_mode:
            self.resolve_image(spec.image, "always")
        if found is not None:
            if self._side_target_runs(found):
                return None
            if not check_mode:
                self._start_side_target(found, spec, name)
            return "started"
        if check_mode:
            return "created"
        if not pull:
            self.resolve_image(spec.image, *compose_pull_policy(spec))
        self._create_side_target(spec, compose_project, project, name, publish_address)
        return "created"

    def _side_target_name(self, spec: ServiceSpec, project: str) -> str:
        raise NotImplementedError

    def _find_side_target(self, name: str) -> dict[str, Any] | None:
        """What the engine has of the side target named ``name``, None when nothing."""
        raise NotImplementedError

    def _side_target_runs(self, found: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _start_side_target(self, found: dict[str, Any], spec: ServiceSpec, name: str) -> None:
        raise NotImplementedError

    def _create_side_target(
        self, spec: ServiceSpec, compose_project: ComposeProject, project: str, name: str, publish_address: str
    ) -> None:
        raise NotImplementedError


def compose_pull_policy(spec: ServiceSpec) -> tuple[str, int | None]:
    """The pull policy of a service's Compose pull_policy, and its refresh age (``build``: what is built is not pulled)."""
    if spec.pull_policy in PULL_POLICIES:
        return spec.pull_policy, spec.pull_refresh_s
    return "missing", None


def _tagged_age_s(image: dict[str, Any]) -> float:
    """Seconds since the engine last tagged ``image`` (a pull tags it); infinite when it does not say."""
    stamp = str((image.get("Metadata") or {}).get("LastTagTime") or "")
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", stamp)
    if not match or match.group(1).startswith("0001-"):
        return float("inf")
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    tagged = datetime.datetime.fromisoformat(match.group(1) + zone)
    return (datetime.datetime.now(datetime.timezone.utc) - tagged).total_seconds()
