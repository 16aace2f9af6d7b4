# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``${VAR}`` interpolation as Compose does it (the Compose spec's "Interpolation", compose-go's template).

``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``,
``${VAR:+alt}``, ``${VAR+alt}`` and ``$$``; a default, alternative or message may itself hold
``${...}`` (nested defaults). A ``$`` followed by anything else stays as it is; an unset
variable without a default is an empty string. Where the variables come from: ``env_files``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The colon forms first: ``:-`` must not be read as ``:`` then ``-``.
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def interpolate(value: Any, variables: Mapping[str, str], where: str) -> Any:
    """``value`` with every string in it interpolated (mapping keys are not, as in Compose)."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables, where) for item in value]
    if not isinstance(value, str):
        return value
    return interpolate_text(value, variables, where)


def interpolate_text(text: str, variables: Mapping[str, str], where: str) -> str:
    """One string, scanned left to right (a regex can't match the nested braces of ``${A:-${B}}``)."""
    pieces = []
    position = 0
    while True:
        dollar = text.find("$", position)
        if dollar < 0:
            pieces.append(text[position:])
            return "".join(pieces)
        pieces.append(text[position:dollar])
        following = text[dollar + 1:dollar + 2]
        if following == "$":
            pieces.append("$")
            position = dollar + 2
        elif following == "{":
            closing = _closing_brace(text, dollar + 1)
            if closing < 0:
                raise FlowError("%s: invalid interpolation %s: no closing brace." % (where, text[dollar:]))
            pieces.append(_braced(text[dollar + 2:closing], variables, where))
            position = closing + 1
        else:
            name = _NAME_RE.match(text, dollar + 1)
            pieces.append(variables.get(name.group(0), "") if name else "$")
            position = name.end() if name else dollar + 1


def _closing_brace(text: str, opening: int) -> int:
    """Index of the ``}`` that closes the ``{`` at ``opening``, or -1."""
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _braced(expression: str, variables: Mapping[str, str], where: str) -> str:
    """What ``${expression}`` stands for; the argument after the operator is interpolated only when used."""
    name_match = _NAME_RE.match(expression)
    rest = expression[name_match.end():] if name_match else expression
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None) if rest else ""
    if not name_match or operator is None:
        raise FlowError("%s: invalid interpolation ${%s}." % (where, expression))
    name = name_match.group(0)
    if not operator:
        return variables.get(name, "")
    argument = rest[len(operator):]
    value = variables.get(name)
    # ``:`` forms treat an empty value as unset; the others only a missing one.
    present = value is not None and (value != "" or not operator.startswith(":"))
    if operator.endswith("+"):
        return interpolate_text(argument, variables, where) if present else (value or "")
    if present:
        return value or ""
    if operator.endswith("?"):
        message = interpolate_text(argument, variables, where)
        raise FlowError("%s: variable %s is required: %s" % (where, name, message or "not set"))
    return interpolate_text(argument, variables, where)
