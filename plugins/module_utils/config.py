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
from dataclasses import dataclass

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError, yaml_error
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import DEFAULT_SERVER_SLOTS

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


@dataclass(frozen=True)
class Option:
    """Where one option may come from, besides its module parameter."""

    kind: str = "str"  # str | bool | list | int | raw
    env: tuple = ()
    file_keys: tuple = ()
    default: object = None


def _opt(kind="str", env=(), file_keys=(), default=None):
    return Option(kind=kind, env=tuple(env), file_keys=tuple(file_keys), default=default)


# parameter name -> sources. Seed names first in env/file_keys.
OPTIONS = {
    "docker_host": _opt(env=("FLOW_HOST", "DOCKER_HOST"), file_keys=("host", "docker_host")),
    "cert_path": _opt(env=("FLOW_CERT_PATH", "DOCKER_CERT_PATH"), file_keys=("cert_path",)),
    "tls_verify": _opt("bool", env=("FLOW_TLS_VERIFY", "DOCKER_TLS_VERIFY"), file_keys=("tls_verify",)),
    "backend": _opt(env=("FLOW_BACKEND",), file_keys=("backend",), default="auto"),
    "compose_path": _opt(env=("FLOW_COMPOSE_PATH",), file_keys=("compose_path",), default="docker-compose.yml"),
    "blue_green": _opt("bool", env=("FLOW_BLUE_GREEN",), file_keys=("blue_green",), default=True),
    "target": _opt(env=("FLOW_TARGET",), file_keys=("target",), default="app"),
    "side_targets": _opt("list", env=("FLOW_SIDE_TARGETS",), file_keys=("side_targets",), default=[]),
    "pull_side_targets": _opt("bool", env=("FLOW_PULL_SIDE_TARGETS",), file_keys=("pull_side_targets",), default=False),
    "project": _opt(env=("FLOW_PROJECT",), file_keys=("project",)),
    "service_name": _opt(env=("FLOW_SERVICE_NAME",), file_keys=("service_name",)),
    "consul_address": _opt(
        env=("FLOW_CONSUL_ADDRESS", "CONSUL_HTTP_ADDR"), file_keys=("consul_address",), default="http://127.0.0.1:8500"
    ),
    "consul_token": _opt(env=("FLOW_CONSUL_TOKEN", "CONSUL_HTTP_TOKEN"), file_keys=("consul_token",)),
    "consul_ca_cert": _opt(env=("FLOW_CONSUL_CA_CERT", "CONSUL_CACERT"), file_keys=("consul_ca_cert",)),
    "consul_client_cert": _opt(env=("FLOW_CONSUL_CLIENT_CERT", "CONSUL_CLIENT_CERT"), file_keys=("consul_client_cert",)),
    "consul_client_key": _opt(env=("FLOW_CONSUL_CLIENT_KEY", "CONSUL_CLIENT_KEY"), file_keys=("consul_client_key",)),
    "consul_validate_certs": _opt(
        "bool", env=("FLOW_CONSUL_VALIDATE_CERTS",), file_keys=("consul_validate_certs",), default=True
    ),
    "scale": _opt("raw", env=("FLOW_SCALE",), file_keys=("scale",)),
    "max_instances": _opt("int", env=("FLOW_MAX_INSTANCES",), file_keys=("max_instances",)),
    "flow": _opt("list", env=("FLOW",), file_keys=("flow",), default=["deploy"]),
    "proxy_host": _opt(env=("FLOW_PROXY_HOST",), file_keys=("proxy_host",)),
    "proxy_docker_host": _opt(env=("FLOW_PROXY_DOCKER_HOST",), file_keys=("proxy_docker_host",)),
    "proxy_docker_cert_path": _opt(env=("FLOW_PROXY_DOCKER_CERT_PATH",), file_keys=("proxy_docker_cert_path",)),
    "proxy_reconf_port": _opt("raw", env=("FLOW_PROXY_RECONF_PORT",), file_keys=("proxy_reconf_port",)),
    "service_path": _opt("list", env=("FLOW_SERVICE_PATH",), file_keys=("service_path",), default=[]),
    "service_domain": _opt(env=("FLOW_SERVICE_DOMAIN",), file_keys=("service_domain",)),
    "path_type": _opt(env=("FLOW_PATH_TYPE",), file_keys=("path_type",), default="prefix"),
    "proxy_tls_verify": _opt("bool", env=("FLOW_PROXY_TLS_VERIFY",), file_keys=("proxy_tls_verify",)),
    "proxy_name": _opt(env=("FLOW_PROXY_NAME",), file_keys=("proxy_name",), default="dockerflow-proxy"),
    "proxy_image": _opt(env=("FLOW_PROXY_IMAGE",), file_keys=("proxy_image",), default="haproxy:3.0"),
    "proxy_listen_address": _opt(env=("FLOW_PROXY_LISTEN_ADDRESS",), file_keys=("proxy_listen_address",), default="*"),
    "proxy_stats_address": _opt(env=("FLOW_PROXY_STATS_ADDRESS",), file_keys=("proxy_stats_address",), default="127.0.0.1"),
    "proxy_admin_address": _opt(env=("FLOW_PROXY_ADMIN_ADDRESS",), file_keys=("proxy_admin_address",), default="127.0.0.1"),
    "proxy_http_port": _opt("int", env=("FLOW_PROXY_HTTP_PORT",), file_keys=("proxy_http_port",), default=80),
    "proxy_stats_port": _opt("int", env=("FLOW_PROXY_STATS_PORT",), file_keys=("proxy_stats_port",), default=8404),
    "proxy_admin_port": _opt("int", env=("FLOW_PROXY_ADMIN_PORT",), file_keys=("proxy_admin_port",), default=9999),
    "proxy_master_port": _opt("int", env=("FLOW_PROXY_MASTER_PORT",), file_keys=("proxy_master_port",), default=9998),
    "proxy_max_servers": _opt(
        "int", env=("FLOW_PROXY_MAX_SERVERS",), file_keys=("proxy_max_servers",), default=DEFAULT_SERVER_SLOTS
    ),
    "consul_dns": _opt(env=("FLOW_CONSUL_DNS",), file_keys=("consul_dns",), default="127.0.0.1:8600"),
    "drain_timeout": _opt("int", env=("FLOW_DRAIN_TIMEOUT",), file_keys=("drain_timeout",), default=30),
    "publish_address": _opt(env=("FLOW_PUBLISH_ADDRESS",), file_keys=("publish_address",), default="0.0.0.0"),
    "service_address": _opt(env=("FLOW_SERVICE_ADDRESS",), file_keys=("service_address",)),
    "pull": _opt(env=("FLOW_PULL",), file_keys=("pull",), default="missing"),
    "health_path": _opt(env=("FLOW_HEALTH_PATH",), file_keys=("health_path",)),
    "health_port": _opt("int", env=("FLOW_HEALTH_PORT",), file_keys=("health_port",)),
    "health_timeout": _opt("int", env=("FLOW_HEALTH_TIMEOUT",), file_keys=("health_timeout",), default=120),
    "lock_timeout": _opt("int", env=("FLOW_LOCK_TIMEOUT",), file_keys=("lock_timeout",), default=300),
    "lock_ttl": _opt("int", env=("FLOW_LOCK_TTL",), file_keys=("lock_ttl",), default=30),
    "keep_releases": _opt("int", env=("FLOW_KEEP_RELEASES",), file_keys=("keep_releases",), default=1),
}

# The original's options that have no effect here. They are still read, so an existing docker-flow.yml
# loads, and the modules that act on the proxy say what they were and what to set instead.
IGNORED_OPTIONS = {
    "proxy_host": "the original sent docker-flow-proxy's reconfigure requests to that host; Flow runs and reconfigures "
                  "HAProxy through the Docker engine of the proxy host: proxy_docker_host (else docker_host) names it",
    "proxy_reconf_port": "it was the port of docker-flow-proxy's reconfigure API, which Flow does not use (it renders "
                         "HAProxy's configuration and reloads it through proxy_docker_host): remove it",
}


def ignored_option_warnings(file_values, file_path, environ=None):
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


def _parse_bool(value, source):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise FlowError("%s=%r is not a boolean: use true or false." % (source, value))


def _parse_int(value, source):
    if isinstance(value, bool):
        raise FlowError("%s=%r is not a whole number." % (source, value))
    try:
        return int(str(value).strip())
    except ValueError:
        raise FlowError("%s=%r is not a whole number." % (source, value))


def _parse_list(value, source, from_env):
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


def convert(option, value, source, from_env=False):
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


def read_flow_file(path, required=False):
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


def resolve(params, names, environ=None, file_values=None):
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
