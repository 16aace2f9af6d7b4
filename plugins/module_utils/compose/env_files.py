# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where variables come from, as Compose reads them: the project's ``.env`` (or the given env
files, like ``docker compose --env-file``) and a service's ``env_file`` entries.

Lines follow compose-go's dotenv format: ``KEY=VALUE``, ``export KEY=VALUE``, ``#`` comments
(inline too, after a space, on unquoted values), single quotes literal, double quotes with
backslash escapes, ``${VAR}`` interpolated in unquoted and double-quoted values, and a bare
``KEY`` taking its value from the environment (left out when the environment lacks it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.interpolation import interpolate_text
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import as_list, only_keys
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

_KEY_RE = re.compile(r"^[A-Za-z0-9_.\[\]-]+$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$"}  # \$ stays a literal $
_ESCAPE_RE = re.compile(r"\\(.)")
_ENV_FILE_KEYS = ("path", "required", "format")


def project_variables(directory: str, environ: Mapping[str, str], env_files: list[str] | None = None) -> dict[str, str]:
    """What ``${VAR}`` resolves from: ``environ`` first, then ``env_files`` (a later file over an
    earlier one) or, without them, the project directory's ``.env`` when there is one."""
    if env_files:
        paths = [os.path.join(directory, path) for path in env_files]
    else:
        paths = [path for path in [os.path.join(directory, ".env")] if os.path.isfile(path)]
    from_files: dict[str, str] = {}
    for path in paths:
        from_files.update(read_dotenv(path, environ))
    return dict(from_files, **environ)


def service_env_files(entries: Any, directory: str, variables: Mapping[str, str], where: str) -> dict[str, str]:
    """A service's ``env_file`` (a path, or ``{path, required, format}``, or a list of them), in order."""
    environment: dict[str, str] = {}
    for entry in as_list(entries):
        if isinstance(entry, dict):
            only_keys(entry, _ENV_FILE_KEYS, where)
            path, required, env_format = entry.get("path"), entry.get("required", True), entry.get("format")
        else:
            path, required, env_format = entry, True, None
        if not isinstance(path, str) or not path:
            raise FlowError("%s: each entry needs a path (a string, or a mapping with path)." % where)
        if not isinstance(required, bool) or env_format not in (None, "raw"):
            raise FlowError("%s: %s: required must be true or false, format raw or unset." % (where, path))
        full_path = os.path.join(directory, path)
        if not required and not os.path.exists(full_path):
            continue
        environment.update(read_dotenv(full_path, variables, raw=env_format == "raw"))
    return environment


def service_label_files(entries: Any, directory: str, variables: Mapping[str, str], where: str) -> dict[str, str]:
    """A service's ``label_file`` (a path or a list of paths, relative to the project directory), a later file
    over an earlier one; the lines are read as env files are (compose-go reads them with the same parser)."""
    labels: dict[str, str] = {}
    for path in as_list(entries):
        if not isinstance(path, str) or not path:
            raise FlowError("%s: each entry must be a path (a string)." % where)
        full_path = os.path.join(directory, path)
        if not os.path.isfile(full_path):
            raise FlowError("%s: label file %s does not exist." % (where, full_path))
        labels.update(read_dotenv(full_path, variables))
    return labels


def read_dotenv(path: str, lookup: Mapping[str, str] | None = None, raw: bool = False) -> dict[str, str]:
    """The KEY=VALUE lines of ``path``; ``${VAR}`` resolves from ``lookup``, then the file's earlier lines.

    ``raw`` (Compose's ``format: raw``): values as written, no quotes, escapes or interpolation.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise FlowError("Cannot read env file %s: %s." % (path, exc.strerror or exc))
    lookup = lookup or {}
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export ") and not raw:
            text = text[len("export "):].strip()
        key, equals, value = (part.strip() for part in text.partition("="))
        if not _KEY_RE.match(key):
            raise FlowError("%s line %d: expected KEY=VALUE, got %r." % (path, number, line))
        if not equals:
            if key in lookup:  # a bare KEY: the environment's value, or nothing
                values[key] = lookup[key]
            continue
        if raw:
            values[key] = value
            continue
        where = "%s line %d" % (path, number)
        values[key] = _dotenv_value(value, dict(values, **lookup), where)
    return values


def _dotenv_value(value: str, variables: Mapping[str, str], where: str) -> str:
    """One value: quotes removed, escapes read (double quotes), variables interpolated (not in single quotes)."""
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if quoted and value[0] == "'":
        return value[1:-1]
    if quoted:
        unescaped = _ESCAPE_RE.sub(lambda match: _ESCAPES.get(match.group(1), match.group(0)), value[1:-1])
        return interpolate_text(unescaped, variables, where)
    return interpolate_text(value.split(" #", 1)[0].rstrip(), variables, where)
