# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Variables as Compose resolves them: ``.env``/``env_file`` lines and ``${VAR}`` interpolation.

The place for Compose's other interpolation forms and variable sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

_EXPRESSION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?)(.*))?$", re.DOTALL)
_INTERPOLATION_RE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def read_dotenv(path: str) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional quotes), as Compose reads .env and env_file."""
    values = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise FlowError("Cannot read env file %s: %s." % (path, exc.strerror or exc))
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export "):].strip()
        if "=" not in text:
            raise FlowError("%s line %d: expected KEY=VALUE, got %r." % (path, number, line))
        key, value = text.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(value: Any, variables: Mapping[str, str], where: str) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}`` and ``$$``."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables, where) for item in value]
    if not isinstance(value, str):
        return value
    return _INTERPOLATION_RE.sub(lambda match: _substitute(match, variables, where), value)


def _substitute(match: re.Match[str], variables: Mapping[str, str], where: str) -> str:
    """The text one ``$$``, ``$VAR`` or ``${...}`` stands for."""
    if match.group(0) == "$$":
        return "$"
    if match.group(2) is not None:
        return variables.get(match.group(2), "")
    parsed = _EXPRESSION_RE.match(match.group(1))
    if not parsed:
        raise FlowError("%s: invalid interpolation ${%s}." % (where, match.group(1)))
    name, operator, argument = parsed.groups()
    if not operator:
        return variables.get(name, "")
    present = name in variables and (variables[name] != "" or not operator.startswith(":"))
    if present:
        return variables[name]
    if operator.endswith("?"):
        raise FlowError("%s: variable %s is required: %s" % (where, name, argument or "not set"))
    return argument
