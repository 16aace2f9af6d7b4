# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's ``build`` section (the short form ``build: ./dir`` too) into a BuildSpec.

Flow builds through the Docker SDK's ``APIClient.build`` (``backends.image_build``): the engine's
classic builder. The keys only BuildKit honours (it needs a session the SDK cannot open) are
refused in one line naming the key, as is a list of several platforms; nothing here reads the
file system (the deploy step reads the context when it builds, ``backends.build_context``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.engine_options import flag
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import REMOTE_CONTEXT_PREFIXES, BuildSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import (
    as_list,
    as_mapping,
    only_keys,
    parse_bytes,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

BUILD_KEYS = frozenset(
    [
        "context", "dockerfile", "dockerfile_inline", "args", "target", "labels", "network", "cache_from",
        "extra_hosts", "shm_size", "no_cache", "pull", "isolation", "platforms", "tags",
    ]
)
# Compose keys of build only BuildKit honours (the SDK's build call cannot open its session), and what they ask for.
NEEDS_BUILDKIT = {
    "ssh": "an SSH agent for the build",
    "secrets": "build secrets",
    "additional_contexts": "named extra contexts",
    "cache_to": "a cache export",
    "entitlements": "build entitlements",
    "privileged": "a privileged build",
    "provenance": "a provenance attestation",
    "sbom": "an SBOM attestation",
}
# The classic builder takes these, but the SDK's build call has no argument for them.
NOT_IN_THE_SDK = frozenset(["ulimits"])


def parse_build(raw_build: Any, directory: str, variables: Mapping[str, str], where: str) -> BuildSpec | None:
    """The BuildSpec of a service's ``build`` value; a relative context is read from ``directory``."""
    if raw_build is None:
        return None
    where = where + ": build"
    if isinstance(raw_build, str):
        raw_build = {"context": raw_build}
    if not isinstance(raw_build, dict):
        raise FlowError("%s must be a path (the context) or a mapping." % where)
    _refuse_what_the_sdk_cannot_build(raw_build, where)
    only_keys(raw_build, BUILD_KEYS, where)
    dockerfile = _text(raw_build.get("dockerfile"), where + ".dockerfile")
    inline = raw_build.get("dockerfile_inline")
    if inline is not None and (dockerfile is not None or not isinstance(inline, str)):
        raise FlowError("%s.dockerfile_inline must be a string, and cannot be combined with dockerfile." % where)
    shm_size = raw_build.get("shm_size")
    return BuildSpec(
        context=_context(raw_build.get("context", "."), directory, where + ".context"),
        dockerfile=dockerfile,
        dockerfile_inline=inline,
        args=_args(raw_build.get("args"), variables, where + ".args"),
        target=_text(raw_build.get("target"), where + ".target"),
        labels=as_mapping(raw_build.get("labels"), where, "labels"),
        network=_network(raw_build.get("network"), where + ".network"),
        cache_from=_texts(raw_build.get("cache_from"), where + ".cache_from"),
        extra_hosts=_extra_hosts(raw_build.get("extra_hosts"), where + ".extra_hosts"),
        shm_size=parse_bytes(shm_size, where + ".shm_size") if shm_size is not None else None,
        no_cache=flag(raw_build.get("no_cache"), where + ".no_cache"),
        pull=flag(raw_build.get("pull"), where + ".pull"),
        isolation=_text(raw_build.get("isolation"), where + ".isolation"),
        platform=_platform(raw_build.get("platforms"), where + ".platforms"),
        tags=_texts(raw_build.get("tags"), where + ".tags"),
    )


def _refuse_what_the_sdk_cannot_build(raw_build: dict[str, Any], where: str) -> None:
    """The first key of ``raw_build`` that the Docker SDK's build call cannot honour, refused in one line."""
    for key in sorted(raw_build):
        if key in NEEDS_BUILDKIT:
            reason = "needs BuildKit (%s), which the Docker SDK's build call cannot use" % NEEDS_BUILDKIT[key]
        elif key in NOT_IN_THE_SDK:
            reason = "cannot be sent by the Docker SDK's build call, which has no %s argument" % key
        else:
            continue
        raise FlowError("%s.%s %s: remove it, or build the image beforehand and name it in image." % (where, key, reason))


def _context(value: Any, directory: str, where: str) -> str:
    """An absolute directory (``~`` expanded, a relative one from the Compose file's), or a URL as written."""
    text = _text(value, where)
    if text is None:
        raise FlowError("%s must be a path or a URL." % where)
    if text.startswith(REMOTE_CONTEXT_PREFIXES):
        return text
    return os.path.normpath(os.path.join(directory, os.path.expanduser(text)))


def _args(value: Any, variables: Mapping[str, str], where: str) -> dict[str, str]:
    """Build arguments, list (``K=V`` or a bare ``K``) or mapping (``K: null`` too); a bare or null one takes its
    value from the project's variables and is left out when they lack it, as Compose does."""
    if isinstance(value, dict):
        value = [name if item is None else "%s=%s" % (name, "true" if item is True else "false" if item is False else item)
                 for name, item in value.items()]
    if value is not None and not isinstance(value, list):
        raise FlowError("%s must be a list (K=V) or a mapping." % where)
    return as_mapping(value, where, "args", variables)


def _network(value: Any, where: str) -> str | None:
    """The network of the build's RUN steps: ``host``, ``none``, a network name; ``default`` is the engine's."""
    text = _text(value, where)
    return None if text == "default" else text


def _platform(value: Any, where: str) -> str | None:
    """One platform: the SDK's build call builds for one only."""
    platforms = _texts(value, where)
    if len(platforms) > 1:
        raise FlowError(
            "%s lists %d platforms: a multi-platform build needs BuildKit, which the Docker SDK's build call cannot "
            "use; keep one (the engine's, for example linux/amd64)." % (where, len(platforms))
        )
    return platforms[0] if platforms else None


def _extra_hosts(value: Any, where: str) -> dict[str, str]:
    """``host:ip`` or ``host=ip`` items, or a mapping, as the SDK's {host: ip}."""
    if isinstance(value, dict):
        return {str(host): ",".join(str(ip) for ip in as_list(address)) for host, address in value.items()}
    hosts = {}
    for item in _texts(value, where):
        host, separator, address = item.partition("=") if "=" in item else item.partition(":")
        if not separator or not host or not address:
            raise FlowError("%s: %r is not HOST=IP (or HOST:IP)." % (where, item))
        hosts[host] = address
    return hosts


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)) or not str(value).strip():
        raise FlowError("%s=%r is not valid: use a non-empty string." % (where, value))
    return str(value)


def _texts(value: Any, where: str) -> list[str]:
    """A list of strings (one string is a list of one)."""
    items = as_list(value)
    if any(isinstance(item, (dict, list)) for item in items):
        raise FlowError("%s must be a list of strings." % where)
    return [str(item) for item in items]
