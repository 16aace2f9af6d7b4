# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options from module parameters over ``FLOW_*`` environment over ``docker-flow.yml``.

The names and precedence follow the original Docker Flow: the YAML keys and
environment variables of its Usage table keep working, so an existing
``docker-flow.yml`` can be pointed at unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils import options
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError, yaml_error

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

DEFAULT_FLOW_FILE = "docker-flow.yml"


if HAS_YAML:

    class _FlowFileLoader(yaml.SafeLoader):
        """SafeLoader that keeps numbers as written: ``scale: +2`` must stay relative, not become 2."""

    _FlowFileLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


# parameter name -> its sources and default, for every option that docker-flow.yml may set
# (the table in options.py: the seed's names come first in env and file_keys).
OPTIONS = {name: option for name, option in options.OPTIONS.items() if option.resolved}

# The original's options that have no effect here. They are still read, so an existing docker-flow.yml
# loads, and the modules that act on the proxy say what they were and what to set instead.
IGNORED_OPTIONS = {
    "proxy_host": "the original sent docker-flow-proxy's reconfigure requests to that host; Flow runs and reconfigures "
                  "HAProxy through the Docker engine of the proxy host: proxy_docker_host (else docker_host) names it",
    "proxy_reconf_port": "it was the port of docker-flow-proxy's reconfigure API, which Flow does not use (it renders "
                         "HAProxy's configuration and reloads it through proxy_docker_host): remove it",
}


def ignored_option_warnings(
    file_values: Mapping[str, Any], file_path: str, environ: Mapping[str, str] | None = None
) -> list[str]:
    """One warning line per ignored option that is set, naming where it was set."""
    environ = os.environ if environ is None else environ
    warnings = []
    for name, why in IGNORED_OPTIONS.items():
        sources = [env for env in OPTIONS[name].env if environ.get(env) not in (None, "")]
        if file_values.get(name) is not None:
            sources.append(file_path)
        if sources:
            warnings.append("%s (set in %s) is ignored: %s." % (name, " and ".join(sources), why))
    return warnings


# Keys of docker-flow.yml that are read but belong to tools outside this module set.
_FILE_KEYS = {key: name for name, option in OPTIONS.items() for key in option.file_keys}


def _parse_bool(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise FlowError("%s=%r is not a boolean: use true or false." % (source, value))


def _parse_int(value: object, source: str) -> int:
    if isinstance(value, bool):
        raise FlowError("%s=%r is not a whole number." % (source, value))
    try:
        return int(str(value).strip())
    except ValueError:
        raise FlowError("%s=%r is not a whole number." % (source, value))


def _parse_list(value: object, source: str, from_env: bool) -> list[str]:
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif from_env or isinstance(value, str):
        items = str(value).split(",")
    else:
        raise FlowError("%s=%r is not a list: use a YAML list or comma-separated values." % (source, value))
    result = []
    for item in items:
        if isinstance(item, (dict, list)):
            raise FlowError("%s has an item %r that is not a plain value." % (source, item))
        text = str(item).strip()
        if text:
            result.append(text)
    return result


def convert(option: options.Option, value: object, source: str, from_env: bool = False) -> Any:
    """Convert a raw env/file value to the option's kind; errors name ``source``."""
    if option.kind == "bool":
        return _parse_bool(value, source)
    if option.kind == "int":
        return _parse_int(value, source)
    if option.kind == "list":
        return _parse_list(value, source, from_env)
    if option.kind == "str":
        if isinstance(value, (dict, list)):
            raise FlowError("%s=%r is not a single value." % (source, value))
        return str(value)
    return value


def read_flow_file(path: str | None, required: bool = False) -> dict[str, Any]:
    """Read ``docker-flow.yml``; a missing file is fine unless ``required``.

    Returns a dict of parameter name -> value (seed keys mapped to parameter
    names). A malformed file raises FlowError naming the file and line.
    """
    if not path or not os.path.exists(path):
        if required:
            raise FlowError("flow_file %s does not exist." % path)
        return {}
    if not HAS_YAML:  # pragma: no cover
        raise FlowError("PyYAML is required to read %s." % path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FlowError("Cannot read %s: %s." % (path, exc.strerror or exc))
    try:
        data = yaml.load(text, Loader=_FlowFileLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FlowError("%s must be a mapping of option names to values, not %s." % (path, type(data).__name__))
    result = {}
    for key, value in data.items():
        if value is None:  # `key:` with nothing after it means "not set", not the text "None"
            continue
        name = _FILE_KEYS.get(str(key))
        if name is None:
            raise FlowError(
                "%s: unknown option %r. Known options: %s." % (path, key, ", ".join(sorted(_FILE_KEYS)))
            )
        result[name] = convert(OPTIONS[name], value, "%s: %s" % (path, key))
    return result


def resolve(
    params: Mapping[str, Any],
    names: Iterable[str],
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge options: module parameter, then FLOW_* environment, then file, then default.

    Returns (values, sources) where sources says where each value came from,
    so modules can report it.
    """
    environ = os.environ if environ is None else environ
    file_values = file_values or {}
    values, sources = {}, {}
    for name in names:
        option = OPTIONS[name]
        value, source = params.get(name), "parameter"
        if value is None:
            for env_name in option.env:
                raw = environ.get(env_name)
                if raw is not None and raw != "":
                    value, source = convert(option, raw, env_name, from_env=True), "env:" + env_name
                    break
        if value is None and name in file_values:
            value, source = file_values[name], "file"
        if value is None:
            value, source = option.default, "default"
            if isinstance(value, list):
                value = list(value)
        values[name] = value
        sources[name] = source
    return values, sources
