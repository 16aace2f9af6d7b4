# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle hooks: ``post_start`` and ``pre_stop``, commands run inside an instance's container, and
``pre_start``, init containers run before a release's instances start.

Each hook is ``{command, user, privileged, working_dir, environment}`` as Compose reads it; the container
backend runs them with the engine's exec (``backends.container_hooks``). A ``pre_start`` step adds ``image``
(None: the service's) and runs in its own container once per release (``backends.container_hooks``): a
blue-green release is always a new set of containers, which is when Compose runs the steps again.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list, as_mapping, only_keys
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

HOOK_KEYS = ("command", "user", "privileged", "working_dir", "environment")
PRE_START_KEYS = (*HOOK_KEYS, "image", "per_replica")


def parse_hooks(value: Any, variables: dict[str, str], where: str) -> list[dict[str, Any]]:
    """A service's ``post_start`` or ``pre_stop`` list, each hook with all of HOOK_KEYS (unset: None, False, {})."""
    hooks = []
    for index, item in enumerate(as_list(value)):
        here = "%s[%d]" % (where, index)
        if not isinstance(item, dict):
            raise FlowError("%s must be a mapping with command (and user, privileged, working_dir, environment)." % here)
        only_keys(item, HOOK_KEYS, here)
        hooks.append(
            {
                "command": _hook_command(item.get("command"), here + ".command"),
                "user": str(item["user"]) if item.get("user") is not None else None,
                "privileged": item.get("privileged") is True,
                "working_dir": str(item["working_dir"]) if item.get("working_dir") else None,
                "environment": as_mapping(item.get("environment"), here, "environment", variables),
            }
        )
    return hooks


def parse_pre_start(value: Any, variables: dict[str, str], where: str) -> list[dict[str, Any]]:
    """A service's ``pre_start`` steps: the hooks' keys, and ``image`` (None: the service's image)."""
    steps = []
    for index, item in enumerate(as_list(value)):
        here = "%s[%d]" % (where, index)
        if not isinstance(item, dict):
            raise FlowError("%s must be a mapping with command or image (and user, privileged, working_dir, "
                            "environment)." % here)
        only_keys(item, PRE_START_KEYS, here)
        if item.get("per_replica") is True:
            raise FlowError(
                "%s.per_replica: true is not supported: Flow runs pre_start once per release, before its instances "
                "start; run per-instance work as a post_start hook (in each instance, before its health wait)." % here)
        if item.get("command") is None and not item.get("image"):
            raise FlowError("%s needs command or image: what to run before the service starts." % here)
        steps.append(
            {
                "command": _hook_command(item["command"], here + ".command") if item.get("command") is not None else None,
                "image": str(item["image"]) if item.get("image") else None,
                "user": str(item["user"]) if item.get("user") is not None else None,
                "privileged": item.get("privileged") is True,
                "working_dir": str(item["working_dir"]) if item.get("working_dir") else None,
                "environment": as_mapping(item.get("environment"), here, "environment", variables),
            }
        )
    return steps


def _hook_command(value: Any, where: str) -> list[str]:
    """The hook's command: a list as is, a string split as a shell would (as Compose does)."""
    try:
        command = shlex.split(value) if isinstance(value, str) else [str(part) for part in as_list(value)]
    except ValueError as exc:
        raise FlowError("%s: cannot split %r: %s." % (where, value, exc))
    if not command:
        raise FlowError("%s is required: the command to run in the container." % where)
    return command
