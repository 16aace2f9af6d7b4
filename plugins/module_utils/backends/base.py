# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the flows ask of a backend (``Backend``), and what they get back (``Instance``).

The flows talk to a backend only through the methods of ``Backend``. ``container.ContainerBackend``
runs instances as plain containers on one engine; ``swarm.SwarmBackend`` implements the same
interface with Swarm services, their tasks being the instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import colors

if TYPE_CHECKING:
    from collections.abc import Callable

    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec


@dataclass
class Instance:
    """One running (or stopped) copy of a release."""

    id: str
    name: str
    service: str
    color: str
    release: int
    number: int
    status: str  # created | running | exited | ...
    health: str | None  # healthy | unhealthy | starting | None (no Docker healthcheck)
    image: str
    config_hash: str
    created: str
    ports: dict[str, int] = field(default_factory=dict)  # "8080/tcp" -> host port
    exit_code: int | None = None
    address: str | None = None  # where its ports answer when not at the flow's service_address (a Swarm node)
    error: str | None = None  # why the engine gave up on it (a Swarm task's error)
    pre_stop: tuple[dict[str, Any], ...] = ()  # Compose pre_stop hooks its labels carry, run before a stop

    @property
    def running(self) -> bool:
        return self.status == "running"

    def as_dict(self) -> dict[str, Any]:
        result = {
            "id": self.id[:12],
            "name": self.name,
            "color": self.color,
            "release": self.release,
            "number": self.number,
            "status": self.status,
            "health": self.health,
            "image": self.image,
            "ports": self.ports,
        }
        if self.address:
            result["address"] = self.address
        return result


@dataclass
class DeploymentContext:
    """What names and labels a release's instances get, and how they are registered in Consul."""

    project: str
    target: str
    service: str
    publish_address: str
    register_port: str | None = None  # "8080/tcp": the port registered in Consul (None: not registered)
    check_http_path: str | None = None
    legacy_names: bool = False

    def compose_service(self, color: str) -> str:
        """The Compose service name a release of ``color`` runs as (docker compose ps shows it)."""
        return self.target if color == colors.PLAIN else "%s-%s" % (self.target, color)

    def environment(self, spec: ServiceSpec, color: str, release: int) -> dict[str, str]:
        """The service's environment, plus the variables that tell an instance which release it is."""
        environment = dict(spec.environment)
        environment.update(
            {"DOCKERFLOW_SERVICE": self.service, "DOCKERFLOW_COLOR": color, "DOCKERFLOW_RELEASE": str(release)}
        )
        return environment


class Backend:
    """The operations the flows need from an engine (a Swarm backend implements the same).

    ``registration_owner`` says who registers running instances in Consul: ``flow`` (the
    flow, right after it saw them healthy, and it deregisters them before stopping them) or
    ``registrator`` (the registrator of the node an instance runs on, from the labels
    ``run_instances`` gave it; the flow only waits for Consul to list them).
    """

    registration_owner = "flow"
    # Whether the images Flow builds must go through a registry (Swarm: every node pulls the image).
    builds_need_registry = False

    def list_instances(self, service: str) -> list[Instance]:
        raise NotImplementedError

    def refresh(self, instance: Instance) -> Instance:
        raise NotImplementedError

    def resolve_image(
        self, image: str, pull_policy: str, check_mode: bool = False, refresh_after_s: int | None = None
    ) -> tuple[str | None, bool]:
        raise NotImplementedError

    def image_has_healthcheck(self, image: str) -> bool:
        raise NotImplementedError

    def built_digest(self, name: str) -> str | None:
        """The build digest the local image ``name`` carries (None: no such image, or not built by Flow)."""
        raise NotImplementedError

    def build_image(self, build: BuildSpec, name: str, digest: str, progress: Callable[[str], None]) -> str:
        """Build image ``name`` from ``build``, labelled with ``digest``; its ID (backends.image_build)."""
        raise NotImplementedError

    def push_image(self, name: str, progress: Callable[[str], None]) -> None:
        raise NotImplementedError

    def refuse_unsupported(self, spec: ServiceSpec) -> None:
        """Refuse, in one line, a setting of ``spec`` this backend cannot run; called before anything changes."""

    def run_instances(
        self,
        spec: ServiceSpec,
        context: DeploymentContext,
        color: str,
        release: int,
        numbers: list[int],
        config_hash: str,
        compose_project: ComposeProject | None = None,
        image_id: str | None = None,
    ) -> list[Instance]:
        raise NotImplementedError

    def clone_instances(self, template: Instance, numbers: list[int]) -> list[Instance]:
        raise NotImplementedError

    def start(self, instances: list[Instance]) -> list[Instance]:
        """Start stopped instances; returns the started ones (a Swarm backend's are new tasks)."""
        raise NotImplementedError

    def stop(self, instances: list[Instance], timeout: int | None = None) -> None:
        raise NotImplementedError

    def remove(self, instances: list[Instance]) -> None:
        raise NotImplementedError

    def retire(self, instances: list[Instance], timeout: int | None = None) -> list[Instance]:
        """Take running instances away for good (scale-down); returns those that went.

        A Swarm backend only says how many go, and Swarm picks which: the result names them.
        """
        self.stop(instances, timeout=timeout)
        self.remove(instances)
        return list(instances)

    def discard(self, instances: list[Instance]) -> None:
        """Undo what run_instances, clone_instances or start just created, after a failed step."""
        self.remove(instances)

    def logs(self, instance: Instance, tail: int = 20) -> str:
        raise NotImplementedError

    def health_log(self, instance: Instance) -> str:
        raise NotImplementedError

    def ensure_side_target(
        self,
        spec: ServiceSpec,
        compose_project: ComposeProject,
        project: str,
        pull: bool,
        publish_address: str,
        check_mode: bool = False,
    ) -> str | None:
        raise NotImplementedError

    def side_target_instance(self, spec: ServiceSpec, project: str) -> Instance:
        raise NotImplementedError
