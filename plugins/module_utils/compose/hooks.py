# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle hooks ``post_start`` and ``pre_stop``: commands run inside an instance's container.

Each hook is ``{command, user, privileged, working_dir, environment}`` as Compose reads it; the container
backend runs them with the engine's exec (``backends.container_hooks``). ``pre_start`` is not read: its
steps are init containers with their own image, run once per service (or per replica) and remembered
across deploys, which is more than a key of one instance.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list, as_mapping, only_keys
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

HOOK_KEYS = ("command", "user", "privileged", "working_dir", "environment")


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


def _hook_command(value: Any, where: str) -> list[str]:
    """The hook's command: a list as is, a string split as a shell would (as Compose does)."""
    try:
        command = shlex.split(value) if isinstance(value, str) else [str(part) for part in as_list(value)]
    except ValueError as exc:
        raise FlowError("%s: cannot split %r: %s." % (where, value, exc))
    if not command:
        raise FlowError("%s is required: the command to run in the container." % where)
    return command
