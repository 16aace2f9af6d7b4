# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a build sends the engine, and the digest that stands for it.

The digest is a SHA-256 over the build's options and over the files the Docker SDK puts into the
context (those its ``.dockerignore`` keeps, chosen by the SDK's own ``exclude_paths``) and the
Dockerfile: their paths, executable bits and contents, not their times or owners, so a fresh
checkout of the same files has the same digest. The deploy step puts it in the release's config
hash (the same files again are the same release, nothing is built) and on the image as a label (a
rerun of a release whose image exists with that digest reuses it). A URL context is fetched by the
engine, so only its URL and options stand for it: pin a commit in the URL, or use ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    from docker.utils.build import exclude_paths

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec

_CHUNK = 1 << 20
_OUTSIDE = ".dockerfile-outside-the-context"  # what exclude_paths keeps for a Dockerfile the SDK adds itself


def build_digest(build: BuildSpec, where: str) -> str:
    """The digest of what building ``build`` sends the engine; ``where`` (``service app: build``) names it in errors."""
    options = asdict(build)
    if not build.remote:
        del options["context"]  # the files stand for it: a moved project directory is the same build
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode("utf-8"))
    if build.remote:
        return digest.hexdigest()
    if not os.path.isdir(build.context):
        raise FlowError("%s.context %s is not a directory." % (where, build.context))
    inside = _dockerfile_in_context(build, digest, where)
    for relative in sorted(exclude_paths(build.context, ignore_patterns(build.context), dockerfile=inside or _OUTSIDE)):
        _add_entry(digest, build.context, relative, where)
    return digest.hexdigest()


def ignore_patterns(context: str) -> list[str]:
    """The patterns of the context's ``.dockerignore``, read as the Docker SDK reads them."""
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _dockerfile_in_context(build: BuildSpec, digest: hashlib._Hash, where: str) -> str | None:
    """The Dockerfile's path relative to the context, None when it is not in the context (inline, or outside it:
    then its content goes into ``digest`` here, since the context's files do not hold it)."""
    if build.dockerfile_inline is not None:
        return None  # in the options already
    path = os.path.normpath(os.path.join(build.context, build.dockerfile or "Dockerfile"))
    if not os.path.isfile(path):
        key = "dockerfile" if build.dockerfile else "context"
        raise FlowError("%s.%s: the Dockerfile %s does not exist." % (where, key, path))
    relative = os.path.relpath(path, build.context)
    if not relative.startswith(".."):
        return relative
    with open(path, "rb") as handle:
        digest.update(b"dockerfile\0" + handle.read())
    return None


def _add_entry(digest: hashlib._Hash, context: str, relative: str, where: str) -> None:
    """One path of the context into ``digest``: a link by its target, a directory by its name, a file by its
    executable bit and content."""
    path = os.path.join(context, relative)
    name = relative.encode("utf-8", "surrogateescape")
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            digest.update(b"L\0%s\0%s\0" % (name, os.readlink(path).encode("utf-8", "surrogateescape")))
        elif stat.S_ISDIR(info.st_mode):
            digest.update(b"D\0%s\0" % name)
        else:
            digest.update(b"F\0%s\0%d\0%d\0" % (name, bool(info.st_mode & stat.S_IXUSR), info.st_size))
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(chunk)
    except OSError as exc:
        raise FlowError("%s: cannot read %s of the build context: %s." % (where, path, exc.strerror or exc))
