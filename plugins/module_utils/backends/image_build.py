# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building a service's image on the engine, and pushing it to a registry.

The Docker SDK's ``APIClient.build`` (the engine's classic builder: ``compose.build`` refuses what
only BuildKit does) builds over the backend's own connection, so a remote ``docker_host`` builds
where it runs the instances. The output is streamed: each ``Step n/m`` becomes a progress line,
and a failure is one FlowError naming the step that failed, with its last output lines (all of
the build's last lines go to the result's ``logs``). The image carries the digest of its inputs
(``build_context``) as a label, which tells the deploy step whether an existing tag is this build.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import short_error
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_BUILD_DIGEST

try:
    import docker.errors
    import requests.exceptions
    from docker.utils import parse_repository_tag

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec

LOG_LINES = 20  # the build's last lines a failure returns as ``logs``
STEP_LINES = 5  # the failing step's last lines its message quotes
Progress = Callable[[str], None]
# The classic builder's words for a failed RUN, which repeat the step's command: the message names the step already.
_NONZERO_RE = re.compile(r"^The command .* returned (a non-zero code: \d+)$")


class ImageBuilds:
    """The build and push half of the engine backends (needs ``api`` and ``_call``)."""

    api: Any
    _call: Callable[..., Any]  # EngineBackend's: an engine call whose errors become one FlowError line

    def built_digest(self, name: str) -> str | None:
        """The build digest of local image ``name``; None when there is no such image (or it was not built by Flow)."""
        try:
            data = self.api.inspect_image(name)
        except docker.errors.ImageNotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise FlowError("Inspecting image %s failed: %s." % (name, short_error(exc)))
        return ((data.get("Config") or {}).get("Labels") or {}).get(LABEL_BUILD_DIGEST)

    def build_image(self, build: BuildSpec, name: str, digest: str, progress: Progress) -> str:
        """Build ``build`` as image ``name`` (and its ``tags``), labelled with ``digest``; its image ID."""
        with _dockerfile(build) as dockerfile:
            stream = self._call(
                "building image %s" % name, self.api.build,
                path=build.context, tag=name, dockerfile=dockerfile, buildargs=dict(build.args) or None,
                target=build.target, labels=dict(build.labels, **{LABEL_BUILD_DIGEST: digest}),
                network_mode=build.network, cache_from=build.cache_from or None, extra_hosts=build.extra_hosts or None,
                shmsize=build.shm_size, nocache=build.no_cache, pull=build.pull, isolation=build.isolation,
                platform=build.platform, rm=True, forcerm=True, decode=True,
            )
            image_id = self._call("building image %s" % name, follow_build, stream, name, progress)
        image_id = image_id or self._call("inspecting image %s" % name, self.api.inspect_image, name)["Id"]
        for extra in build.tags:
            repository, tag = parse_repository_tag(extra)
            self._call("tagging image %s as %s" % (name, extra), self.api.tag, image_id, repository, tag or "latest")
        return image_id

    def push_image(self, name: str, progress: Progress) -> None:
        """Push image ``name`` to the registry its name starts with."""
        repository, tag = parse_repository_tag(name)
        stream = self._call("pushing image %s" % name, self.api.push, repository, tag=tag, stream=True, decode=True)
        self._call("pushing image %s" % name, follow_push, stream, name, progress)


@contextmanager
def _dockerfile(build: BuildSpec) -> Iterator[str | None]:
    """The ``dockerfile`` argument of the SDK's build: as written, or a temporary file holding ``dockerfile_inline``
    (outside the context, so the SDK adds it to what it sends)."""
    if build.dockerfile_inline is None:
        yield build.dockerfile
        return
    handle, path = tempfile.mkstemp(prefix="dockerflow-", suffix=".Dockerfile")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(build.dockerfile_inline)
        yield path
    finally:
        os.unlink(path)


def follow_build(stream: Iterable[dict[str, Any]], name: str, progress: Progress) -> str | None:
    """Read the build's output: a progress line per step; the image ID at the end (None if the engine named none).

    An error in the stream is a FlowError naming the step and quoting its last lines; ``logs`` has the build's.
    """
    last: deque[str] = deque(maxlen=LOG_LINES)
    step: str | None = None
    step_output: list[str] = []
    image_id: str | None = None
    for chunk in stream:
        if chunk.get("error"):
            error = " ".join(str(chunk["error"]).split())
            quoted = " | ".join(step_output[-STEP_LINES:])
            raise FlowError(
                "Building image %s failed at %s: %s.%s" % (
                    name, step or "the start", _NONZERO_RE.sub(r"the command returned \1", error).rstrip("."),
                    (" Its last lines: %s." % quoted) if quoted else ""),
                logs=list(last) + [error],
            )
        image_id = ((chunk.get("aux") or {}).get("ID")) or image_id
        for line in str(chunk.get("stream") or chunk.get("status") or "").splitlines():
            line = line.rstrip()
            if not line.strip():
                continue
            last.append(line)
            if line.startswith("Step "):
                step, step_output = line, []
                progress("building %s: %s" % (name, line))
            elif not line.startswith((" ---> ", "Removing intermediate container")):
                step_output.append(line.strip())
    progress("built %s%s" % (name, " (%s)" % image_id.split(":")[-1][:12] if image_id else ""))
    return image_id


def follow_push(stream: Iterable[dict[str, Any]], name: str, progress: Progress) -> None:
    """Read the push's output: a progress line per layer pushed and for the digest; an error is a FlowError."""
    for chunk in stream:
        if chunk.get("error"):
            error = " ".join(str(chunk["error"]).split()).rstrip(".")
            hint = ""
            if "HTTP response to HTTPS client" in error:
                hint = " (the engine speaks HTTPS to registries: add this one to its insecure-registries)"
            raise FlowError("Pushing image %s failed: %s%s." % (name, error, hint))
        status = str(chunk.get("status") or "")
        if chunk.get("id") and (status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")):
            progress("pushing %s: layer %s %s" % (name, chunk["id"], status.lower()))
        digest = (chunk.get("aux") or {}).get("Digest")
        if digest:
            progress("pushed %s (%s)" % (name, digest))
