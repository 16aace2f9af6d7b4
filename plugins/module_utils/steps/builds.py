# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The images a deploy builds: which services, under which names, and when.

A service with ``build`` and no ``image`` is always built; one with both only when the ``build``
option or its ``pull_policy: build`` asks (as ``docker compose up --build`` does), and then under
its ``image`` name. The names Flow gives:

- the target: ``[<registry>/]<project>-<service>:<release>``, one tag per release, so the instances
  of a kept release (which a rollback starts again) still name their own image;
- a side target: ``[<registry>/]<project>-<service>:latest`` (Compose's own name). A side target
  is neither released nor rolled back, and runs until it is removed: a per-release name would
  change its spec on every deploy although nothing about it changed.

The digests of the inputs (``backends.build_context``) are read before the lock, so a missing
context fails before anything else; the builds run under the lock once the release number is
known and nothing else has changed yet: before any side target or instance of the new color is
created. A failed build changes nothing. An image that already carries its digest is reused, so
the image of a release is built once however often the release is retried. With a ``registry``
every image built is pushed (a Flow-named one is under it; one named in ``image`` goes where its
name says, as ``docker compose push`` does); Swarm needs one, since its nodes pull their images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.build_context import build_digest
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose import ComposeProject, ServiceSpec
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext

# HOST[:PORT][/PATH], as an image name starts.
_REGISTRY_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._/-][a-z0-9]+)*)?$")
SIDE_TAG = "latest"


@dataclass
class PlannedBuild:
    """One image this deploy builds (or finds built already)."""

    service: str  # the Compose service
    build: BuildSpec
    digest: str
    name: str  # the image name, without the tag when the release is the tag (``per_release``)
    per_release: bool  # the target's Flow-named image: tagged with the release, known under the lock

    def image(self, release: int) -> str:
        return "%s:%d" % (self.name, release) if self.per_release else self.name


def builds_now(spec: ServiceSpec, build_option: bool) -> bool:
    """Whether a deploy builds ``spec``'s image: ``build`` alone always; with ``image`` only when asked."""
    return spec.build is not None and (not spec.image or build_option or spec.pull_policy == "build")


def plan_builds(flow: FlowContext, project: ComposeProject, spec: ServiceSpec,
                side_specs: list[ServiceSpec]) -> dict[str, PlannedBuild]:
    """The builds of this deploy, by Compose service, their inputs read and digested (nothing built yet)."""
    settings, backend = flow.settings, flow.backend
    registry = checked_registry(settings.registry)
    planned = {}
    for wanted, side in [(spec, False)] + [(side_spec, True) for side_spec in side_specs]:
        if not builds_now(wanted, settings.build):
            continue
        if backend.builds_need_registry and not registry:
            raise FlowError(
                "backend swarm needs the registry option to build the image of %s: its nodes pull their images from a "
                "registry (for example registry: 10.0.0.2:5000). Or build and push the image beforehand and name it "
                "in image." % wanted.name
            )
        planned[wanted.name] = PlannedBuild(
            service=wanted.name,
            build=wanted.build,
            digest=build_digest(wanted.build, "%s: service %s: build" % (project.path, wanted.name)),
            name=wanted.image or image_repository(registry, settings.project, wanted.name) + (
                ":" + SIDE_TAG if side else ""),
            per_release=not wanted.image and not side,
        )
    return planned


def checked_registry(registry: str | None) -> str | None:
    """The ``registry`` option without a trailing slash; a bad one fails naming it."""
    if not registry:
        return None
    value = registry.rstrip("/")
    if not _REGISTRY_RE.match(value):
        raise FlowError("registry=%r is not valid: use HOST[:PORT][/PATH], for example 10.0.0.2:5000." % registry)
    return value


def image_repository(registry: str | None, project: str, service: str) -> str:
    """``[<registry>/]<project>-<service>``, in lower case as image names must be."""
    repository = ("%s-%s" % (project, service)).lower()
    return "%s/%s" % (registry, repository) if registry else repository


def build_images(flow: FlowContext, planned: dict[str, PlannedBuild], release: int) -> dict[str, str]:
    """Build (or reuse) and, with a registry, push every planned image; Compose service -> image name."""
    backend, names = flow.backend, {}
    for plan in planned.values():
        name = plan.image(release)
        if backend.built_digest(name) == plan.digest:
            flow.progress("image %s of %s is built already from the same inputs: reusing it" % (name, plan.service))
        else:
            flow.fence("building image %s" % name)
            flow.progress("building image %s of %s from %s" % (name, plan.service, plan.build.context))
            backend.build_image(plan.build, name, plan.digest, flow.progress)
        if flow.settings.registry:  # a Flow-named image is under it; one named in image says its own registry
            flow.fence("pushing image %s" % name)
            backend.push_image(name, flow.progress)
        names[plan.service] = name
    return names


def predicted_builds(flow: FlowContext, planned: dict[str, PlannedBuild], release: int) -> None:
    """Check mode: a progress line per image the deploy would build (or reuse), building nothing."""
    for plan in planned.values():
        name = plan.image(release)
        if flow.backend.built_digest(name) == plan.digest:
            flow.progress("would reuse image %s of %s, built already from the same inputs" % (name, plan.service))
        else:
            flow.progress("would build image %s of %s from %s" % (name, plan.service, plan.build.context))
