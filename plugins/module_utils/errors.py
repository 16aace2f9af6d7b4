# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the collection raises for anything a user can fix.

Modules turn a FlowError into ``fail_json(msg=...)``; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class FlowError(Exception):
    """A failure with a one-line message for the operator and optional details.

    ``details`` end up as extra keys of the module result (for example the
    last log lines of a container that never became healthy).
    """

    def __init__(self, msg: object, **details: Any) -> None:
        super().__init__(msg)
        self.msg = " ".join(str(msg).splitlines())
        self.details = details

    def __str__(self) -> str:
        return self.msg


def yaml_error(path: str, exc: Exception) -> FlowError:
    """A FlowError naming ``path`` and, when PyYAML knows it, the line and column of ``exc``."""
    mark = getattr(exc, "problem_mark", None)
    where = " line %d column %d" % (mark.line + 1, mark.column + 1) if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return FlowError("%s%s is not valid YAML: %s." % (path, where, problem))


def sentence(clause: str) -> str:
    """`` Clause.`` to append to a message, or nothing for no clause."""
    return (" %s%s." % (clause[0].upper(), clause[1:])) if clause else ""
