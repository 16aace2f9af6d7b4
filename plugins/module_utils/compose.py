# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Compose file into normalized service specs.

Only the keys listed in SUPPORTED_SERVICE_KEYS are understood; any other key
is an error naming it, because silently ignoring (say) ``build`` or
``secrets`` would deploy something other than what the file describes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError, yaml_error

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

SUPPORTED_SERVICE_KEYS = frozenset(
    [
        "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
        "labels", "networks", "restart", "healthcheck", "depends_on", "extends", "container_name",
        "hostname", "user", "working_dir", "stop_signal", "stop_grace_period", "extra_hosts", "tmpfs",
        "read_only", "init", "cap_add", "cap_drop", "logging", "pull_policy", "deploy",
    ]
)
SUPPORTED_TOP_KEYS = frozenset(["version", "name", "services", "networks", "volumes"])
SUPPORTED_DEPLOY_KEYS = frozenset(
    ["replicas", "mode", "endpoint_mode", "labels", "placement", "update_config", "rollback_config", "restart_policy",
     "resources"]
)
ENDPOINT_MODES = ("dnsrr", "vip")
PORT_MODES = ("host", "ingress")
SWARM_RESTART_CONDITIONS = ("none", "on-failure", "any")
_UPDATE_KEYS = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
_FAILURE_ACTIONS = {"update_config": ("continue", "pause", "rollback"), "rollback_config": ("continue", "pause")}
_UPDATE_ORDERS = ("stop-first", "start-first")
_CONSTRAINT_RE = re.compile(r"^\s*[^=!\s][^=!]*(==|!=)\s*\S")
_BYTES_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
# Extends merge rules, as Compose documents them: mappings merge, sequences add up.
_LIST_OR_MAPPING = ("environment", "labels")
_NESTED_MAPPINGS = ("healthcheck", "logging", "deploy")
_CONCATENATED_LISTS = ("ports", "expose", "volumes", "env_file", "extra_hosts", "tmpfs", "cap_add", "cap_drop")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS_NS = {"us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_EXPRESSION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?)(.*))?$", re.DOTALL)
_INTERPOLATION_RE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class PortSpec:
    container_port: int
    protocol: str = "tcp"
    host_ip: str | None = None
    host_port: int | None = None
    mode: str | None = None  # Swarm publishing mode (long syntax): host | ingress

    @property
    def key(self):
        return "%d/%s" % (self.container_port, self.protocol)


@dataclass
class MountSpec:
    kind: str  # bind | volume | tmpfs
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass
class DeploySpec:
    """The ``deploy`` section, in the Docker Engine's Swarm API units (durations in ns, bytes, NanoCPUs).

    Swarm services use all of it; plain containers only ``replicas`` (the first release's count).
    """

    replicas: int | None = None
    endpoint_mode: str | None = None  # dnsrr | vip
    labels: dict = field(default_factory=dict)  # labels of the Swarm service (not of its containers)
    constraints: list = field(default_factory=list)  # "node.role==worker"
    spread: list = field(default_factory=list)  # placement preferences: "node.labels.zone"
    max_replicas_per_node: int | None = None
    update_config: dict | None = None  # {"Parallelism": 1, "Delay": ns, "FailureAction": ..., ...}
    rollback_config: dict | None = None
    restart_policy: dict | None = None  # {"Condition": "on-failure", "Delay": ns, "MaxAttempts": 3, "Window": ns}
    limits: dict = field(default_factory=dict)  # {"NanoCPUs": int, "MemoryBytes": int, "Pids": int}
    reservations: dict = field(default_factory=dict)  # {"NanoCPUs": int, "MemoryBytes": int}


@dataclass
class ServiceSpec:
    """One Compose service, normalized; field names follow Compose's."""

    name: str
    image: str
    command: list | None = None
    entrypoint: list | None = None
    environment: dict = field(default_factory=dict)
    ports: list = field(default_factory=list)
    expose: list = field(default_factory=list)
    mounts: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)  # compose network key -> {"aliases": [...]}
    restart: str | None = None
    healthcheck: dict | None = None  # Docker API form (test, interval ns, ...), {"test": ["NONE"]} to disable
    depends_on: dict = field(default_factory=dict)  # service -> condition
    container_name: str | None = None
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    stop_signal: str | None = None
    stop_grace_period: int | None = None  # seconds
    extra_hosts: list = field(default_factory=list)
    tmpfs: list = field(default_factory=list)
    read_only: bool = False
    init: bool | None = None
    cap_add: list = field(default_factory=list)
    cap_drop: list = field(default_factory=list)
    logging: dict | None = None
    pull_policy: str | None = None
    deploy: DeploySpec = field(default_factory=DeploySpec)

    def config_hash(self):
        """A stable digest of everything that defines a running instance."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass
class ComposeProject:
    path: str
    directory: str
    name: str | None
    services: dict  # name -> raw (interpolated, extends-resolved) dict
    networks: dict  # key -> {"name": str, "external": bool, "driver": str|None}
    volumes: dict  # key -> {"name": str, "external": bool, "driver": str|None}
    variables: dict = field(default_factory=dict)  # what ${VAR} and bare environment names resolve from

    def service(self, name, parameter="target"):
        if name not in self.services:
            raise FlowError(
                "%s %r is not a service of %s. Services: %s."
                % (parameter, name, self.path, ", ".join(sorted(self.services)) or "none")
            )
        return normalize_service(self, name)

    def dependencies(self, name):
        """Services ``name`` depends on, transitively, dependencies first."""
        ordered, seen = [], set()

        def visit(service, chain):
            if service in chain:
                raise FlowError("%s: depends_on cycle: %s." % (self.path, " -> ".join(chain + [service])))
            if service in seen:
                return
            if service not in self.services:
                raise FlowError("%s: service %r depends on unknown service %r." % (self.path, chain[-1], service))
            for dep in _depends_on(self.services[service], self.path, service):
                visit(dep, chain + [service])
            seen.add(service)
            ordered.append(service)

        for dep in _depends_on(self.services[name], self.path, name):
            visit(dep, [name])
        return ordered


def _load_yaml(path, parameter):
    if not os.path.isfile(path):
        raise FlowError("%s: compose file %s does not exist." % (parameter, path))
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc)
    except OSError as exc:
        raise FlowError("Cannot read compose file %s: %s." % (path, exc.strerror or exc))
    if not isinstance(data, dict):
        raise FlowError("%s is not a Compose file: its top level must be a mapping." % path)
    return data


def read_dotenv(path):
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


def interpolate(value, variables, where):
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}`` and ``$$``."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables, where) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match):
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

    return _INTERPOLATION_RE.sub(substitute, value)


def _resolve_extends(services, path, name, variables, chain=()):
    raw = services[name]
    if not isinstance(raw, dict):
        raise FlowError("%s: service %r must be a mapping." % (path, name))
    extends = raw.get("extends")
    if extends is None:
        return copy.deepcopy(raw)
    if name in chain:
        raise FlowError("%s: extends cycle at service %r." % (path, name))
    if isinstance(extends, str):
        extends = {"service": extends}
    if not isinstance(extends, dict) or "service" not in extends:
        raise FlowError("%s: service %r: extends needs a service name." % (path, name))
    base_name = extends["service"]
    if extends.get("file"):
        base_path = os.path.join(os.path.dirname(path), extends["file"])
        base_data = interpolate(_load_yaml(base_path, "extends.file"), variables, base_path)
        base_services = base_data.get("services", {})
        if base_name not in base_services:
            raise FlowError("%s: service %r extends unknown service %r of %s." % (path, name, base_name, base_path))
        base = _resolve_extends(base_services, base_path, base_name, variables, chain + (name,))
    else:
        if base_name not in services:
            raise FlowError("%s: service %r extends unknown service %r." % (path, name, base_name))
        base = _resolve_extends(services, path, base_name, variables, chain + (name,))
    merged = base
    for key, value in raw.items():
        if key == "extends":
            continue
        if key in _LIST_OR_MAPPING and key in merged:
            lookup = variables if key == "environment" else None
            merged[key] = dict(_as_mapping(merged[key], path, key, lookup), **_as_mapping(value, path, key, lookup))
        elif key in _NESTED_MAPPINGS and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = dict(merged[key], **value)
        elif key in _CONCATENATED_LISTS and key in merged:
            merged[key] = _as_list(merged[key]) + _as_list(value)
        else:
            merged[key] = value
    # depends_on and container_name are never inherited, as in Compose.
    for key in ("depends_on", "container_name"):
        if key not in raw:
            merged.pop(key, None)
    return merged


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_mapping(value, path, key, lookup=None):
    """environment/labels in list (K=V) or mapping form, as a dict of strings.

    A bare ``NAME`` item takes its value from ``lookup`` and is left out when
    ``lookup`` lacks it, as Compose does for environment; without ``lookup``
    (labels) it gets an empty value.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): ("" if v is None else _scalar_text(v)) for k, v in value.items()}
    if isinstance(value, list):
        result = {}
        for item in value:
            text = str(item)
            if "=" in text:
                k, v = text.split("=", 1)
                result[k] = v
            elif lookup is None:
                result[text] = ""
            elif text in lookup:
                result[text] = lookup[text]
        return result
    raise FlowError("%s: %s must be a list or a mapping." % (path, key))


def _scalar_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_project(compose_path, project_name=None, environ=None):
    """Read, interpolate and check ``compose_path``; service specs are built on demand."""
    if not HAS_YAML:  # pragma: no cover
        raise FlowError("PyYAML is required to read compose files.")
    path = os.path.abspath(compose_path)
    data = _load_yaml(path, "compose_path")
    directory = os.path.dirname(path)
    variables = dict(environ if environ is not None else os.environ)
    dotenv = os.path.join(directory, ".env")
    if os.path.isfile(dotenv):
        for key, value in read_dotenv(dotenv).items():
            variables.setdefault(key, value)
    data = interpolate(data, variables, path)
    unknown_top = sorted(k for k in data if k not in SUPPORTED_TOP_KEYS and not str(k).startswith("x-"))
    if "services" not in data:
        raise FlowError("%s has no services section." % path)
    if unknown_top:
        raise FlowError(
            "%s: top-level key(s) %s are not supported (supported: %s)."
            % (path, ", ".join(unknown_top), ", ".join(sorted(SUPPORTED_TOP_KEYS)))
        )
    raw_services = data.get("services") or {}
    if not isinstance(raw_services, dict):
        raise FlowError("%s: services must be a mapping." % path)
    services = {}
    for name in raw_services:
        if not _NAME_RE.match(str(name)):
            raise FlowError("%s: service name %r is not valid." % (path, name))
        services[str(name)] = _resolve_extends(raw_services, path, name, variables)
    project = project_name or data.get("name")
    networks = _top_level_resources(data.get("networks"), path, "networks", project)
    volumes = _top_level_resources(data.get("volumes"), path, "volumes", project)
    return ComposeProject(
        path=path, directory=directory, name=project, services=services, networks=networks, volumes=volumes,
        variables=variables,
    )


def _top_level_resources(section, path, kind, project):
    result = {}
    if section is None:
        return result
    if not isinstance(section, dict):
        raise FlowError("%s: top-level %s must be a mapping." % (path, kind))
    for key, value in section.items():
        value = value or {}
        if not isinstance(value, dict):
            raise FlowError("%s: %s.%s must be a mapping." % (path, kind, key))
        unknown = sorted(set(value) - {"name", "external", "driver", "driver_opts", "labels"})
        if unknown:
            raise FlowError("%s: %s.%s: key(s) %s are not supported." % (path, kind, key, ", ".join(unknown)))
        external = value.get("external", False)
        if isinstance(external, dict):
            name = external.get("name") or value.get("name") or key
            external = True
        else:
            external = bool(external)
            name = value.get("name") or (key if external else None)
        result[str(key)] = {
            "name": name,
            "external": external,
            "driver": value.get("driver"),
            "driver_opts": value.get("driver_opts") or {},
            "labels": _as_mapping(value.get("labels"), path, "%s.%s.labels" % (kind, key)),
        }
    return result


def _depends_on(raw, path, name):
    value = raw.get("depends_on")
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(item): "service_started" for item in value}
    if isinstance(value, dict):
        result = {}
        for dep, options in value.items():
            condition = (options or {}).get("condition", "service_started") if isinstance(options, dict) else None
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise FlowError("%s: service %r: depends_on.%s has an unknown condition %r." % (path, name, dep, condition))
            result[str(dep)] = condition
        return result
    raise FlowError("%s: service %r: depends_on must be a list or a mapping." % (path, name))


def parse_duration_ns(value, where):
    """Compose durations (``1m30s``, ``500ms``, or a number of seconds) in nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 10**9)
    text = str(value).strip()
    if not text or _DURATION_RE.sub("", text) != "":
        raise FlowError("%s=%r is not a duration (examples: 10s, 1m30s, 500ms)." % (where, value))
    return sum(int(float(number) * _DURATION_UNITS_NS[unit]) for number, unit in _DURATION_RE.findall(text))


def _command(value, where):
    if value is None:
        return None
    if isinstance(value, str):
        import shlex

        try:
            return shlex.split(value)
        except ValueError as exc:
            raise FlowError("%s: cannot split %r: %s." % (where, value, exc))
    if isinstance(value, list):
        return [str(item) for item in value]
    raise FlowError("%s must be a string or a list." % where)


def parse_port(item, where):
    """One entry of ``ports`` (short or long syntax) as a PortSpec."""
    if isinstance(item, dict):
        unknown = set(item) - {"target", "published", "host_ip", "protocol", "mode"}
        if unknown or "target" not in item:
            raise FlowError("%s: port %r needs target and only target, published, host_ip, protocol, mode." % (where, item))
        published = item.get("published")
        protocol = str(item.get("protocol", "tcp"))
        if protocol not in PORT_PROTOCOLS:
            raise FlowError("%s: port %r has an unknown protocol %r (tcp, udp, sctp)." % (where, item, protocol))
        mode = item.get("mode")
        if mode is not None and mode not in PORT_MODES:
            raise FlowError("%s: port %r has an unknown mode %r (%s)." % (where, item, mode, ", ".join(PORT_MODES)))
        return PortSpec(
            container_port=_port_number(item["target"], where),
            protocol=protocol,
            host_ip=item.get("host_ip"),
            host_port=_port_number(published, where) if published not in (None, "") else None,
            mode=mode,
        )
    text = str(item).strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    if protocol not in PORT_PROTOCOLS:
        raise FlowError("%s: port %r has an unknown protocol %r (tcp, udp, sctp)." % (where, item, protocol))
    if text.startswith("["):  # [::1]:8080:80
        host_ip, _separator, rest = text[1:].partition("]:")
        parts = [host_ip] + rest.split(":")
    else:
        parts = text.split(":")
    if len(parts) == 1:
        host_ip, host_port, container = None, None, parts[0]
    elif len(parts) == 2:
        host_ip, host_port, container = None, parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_port, container = parts
    else:
        raise FlowError("%s: port %r is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]." % (where, item))
    if "-" in container or (host_port and "-" in host_port):
        raise FlowError("%s: port ranges like %r are not supported; list each port." % (where, item))
    return PortSpec(
        container_port=_port_number(container, where),
        protocol=protocol,
        host_ip=host_ip or None,
        host_port=_port_number(host_port, where) if host_port else None,
    )


def _port_number(value, where):
    try:
        number = int(str(value))
    except ValueError:
        raise FlowError("%s: %r is not a port number." % (where, value))
    if not 1 <= number <= 65535:
        raise FlowError("%s: port %d is outside 1-65535." % (where, number))
    return number


def _mounts(project, raw, where):
    mounts = []
    for item in _as_list(raw.get("volumes")):
        if isinstance(item, dict):
            kind = item.get("type", "volume")
            target = item.get("target")
            source = item.get("source")
            read_only = bool(item.get("read_only", False))
        else:
            parts = str(item).split(":")
            read_only = False
            if len(parts) == 1:
                source, target = None, parts[0]
            elif len(parts) in (2, 3):
                source, target = parts[0], parts[1]
                if len(parts) == 3:
                    modes = parts[2].split(",")
                    unknown = [m for m in modes if m not in ("ro", "rw", "z", "Z")]
                    if unknown:
                        raise FlowError("%s: volume %r has unknown mode(s) %s." % (where, item, ",".join(unknown)))
                    read_only = "ro" in modes
            else:
                raise FlowError("%s: volume %r is not SOURCE:TARGET[:MODE]." % (where, item))
            kind = "bind" if source and (source[0] in "./~") else "volume"
        if not target or not str(target).startswith("/"):
            raise FlowError("%s: volume %r needs an absolute container path." % (where, item))
        if kind == "bind":
            if not source:
                raise FlowError("%s: bind volume %r needs a source path." % (where, item))
            source = os.path.normpath(os.path.join(project.directory, os.path.expanduser(source)))
        elif kind == "volume" and source:
            if source not in project.volumes:
                raise FlowError("%s: named volume %r is not declared under the top-level volumes key." % (where, source))
        elif kind not in ("volume", "tmpfs"):
            raise FlowError("%s: volume type %r is not supported (bind, volume, tmpfs)." % (where, kind))
        mounts.append(MountSpec(kind=kind, target=str(target), source=source, read_only=read_only))
    return mounts


def _healthcheck(raw, where):
    value = raw.get("healthcheck")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FlowError("%s: healthcheck must be a mapping." % where)
    unknown = set(value) - {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
    if unknown:
        raise FlowError("%s: healthcheck key(s) %s are not supported." % (where, ", ".join(sorted(unknown))))
    if value.get("disable"):
        return {"test": ["NONE"]}
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if test is not None and (not isinstance(test, list) or not test or test[0] not in ("CMD", "CMD-SHELL", "NONE")):
        raise FlowError("%s: healthcheck.test must be a string or a list starting with CMD, CMD-SHELL or NONE." % where)
    result = {"test": [str(part) for part in test] if test else None}
    for key, api_key in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in value:
            result[api_key] = parse_duration_ns(value[key], "%s: healthcheck.%s" % (where, key))
    if "retries" in value:
        try:
            result["retries"] = int(value["retries"])
        except (TypeError, ValueError):
            raise FlowError("%s: healthcheck.retries=%r is not a whole number." % (where, value["retries"]))
    return result


def _service_networks(project, raw, where):
    value = raw.get("networks")
    if value is None:
        return {"default": {"aliases": []}}
    if isinstance(value, list):
        value = {str(item): None for item in value}
    if not isinstance(value, dict):
        raise FlowError("%s: networks must be a list or a mapping." % where)
    result = {}
    for key, options in value.items():
        if key != "default" and key not in project.networks:
            raise FlowError("%s: network %r is not declared under the top-level networks key." % (where, key))
        options = options or {}
        unknown = set(options) - {"aliases"}
        if unknown:
            raise FlowError("%s: networks.%s key(s) %s are not supported." % (where, key, ", ".join(sorted(unknown))))
        result[str(key)] = {"aliases": [str(alias) for alias in options.get("aliases") or []]}
    return result


def normalize_service(project, name):
    """Build the ServiceSpec of service ``name``; unsupported keys are errors that name them."""
    raw = project.services[name]
    where = "%s: service %s" % (project.path, name)
    unknown = sorted(key for key in raw if key not in SUPPORTED_SERVICE_KEYS and not str(key).startswith("x-"))
    if unknown:
        hint = " (build the image beforehand and name it in image)" if "build" in unknown else ""
        raise FlowError(
            "%s: key(s) %s are not supported%s. Supported: %s."
            % (where, ", ".join(unknown), hint, ", ".join(sorted(SUPPORTED_SERVICE_KEYS)))
        )
    image = raw.get("image")
    if not image or not isinstance(image, str):
        raise FlowError("%s has no image." % where)
    environment = {}
    for env_file in _as_list(raw.get("env_file")):
        env_path = env_file if isinstance(env_file, str) else (env_file or {}).get("path")
        environment.update(read_dotenv(os.path.join(project.directory, str(env_path))))
    environment.update(_as_mapping(raw.get("environment"), where, "environment", project.variables))
    restart = raw.get("restart")
    if restart is not None and str(restart).split(":", maxsplit=1)[0] not in RESTART_POLICIES:
        raise FlowError("%s: restart=%r is not one of %s." % (where, restart, ", ".join(RESTART_POLICIES)))
    grace = raw.get("stop_grace_period")
    return ServiceSpec(
        name=name,
        image=image,
        command=_command(raw.get("command"), where + ": command"),
        entrypoint=_command(raw.get("entrypoint"), where + ": entrypoint"),
        environment=environment,
        ports=[parse_port(item, where) for item in _as_list(raw.get("ports"))],
        expose=[str(item) for item in _as_list(raw.get("expose"))],
        mounts=_mounts(project, raw, where),
        labels=_as_mapping(raw.get("labels"), where, "labels"),
        networks=_service_networks(project, raw, where),
        restart=str(restart) if restart is not None else None,
        healthcheck=_healthcheck(raw, where),
        depends_on=_depends_on(raw, project.path, name),
        container_name=raw.get("container_name"),
        hostname=raw.get("hostname"),
        user=str(raw["user"]) if raw.get("user") is not None else None,
        working_dir=raw.get("working_dir"),
        stop_signal=raw.get("stop_signal"),
        stop_grace_period=(parse_duration_ns(grace, where + ": stop_grace_period") // 10**9) if grace is not None else None,
        extra_hosts=[str(item) for item in _as_list(raw.get("extra_hosts"))],
        tmpfs=[str(item) for item in _as_list(raw.get("tmpfs"))],
        read_only=bool(raw.get("read_only", False)),
        init=raw.get("init"),
        cap_add=[str(item) for item in _as_list(raw.get("cap_add"))],
        cap_drop=[str(item) for item in _as_list(raw.get("cap_drop"))],
        logging=raw.get("logging"),
        pull_policy=raw.get("pull_policy"),
        deploy=parse_deploy(raw.get("deploy"), where),
    )


# -- the deploy section ----------------------------------------------------------------------


def parse_deploy(value, where):
    """``deploy`` as a DeploySpec; anything a blue-green Swarm service cannot honour is an error naming it."""
    if value is None:
        return DeploySpec()
    if not isinstance(value, dict):
        raise FlowError("%s: deploy must be a mapping." % where)
    where = where + ": deploy"
    _only(value, SUPPORTED_DEPLOY_KEYS, where)
    mode = value.get("mode", "replicated")
    if mode != "replicated":
        raise FlowError(
            "%s.mode=%r is not supported: blue-green needs a replicated service (mode: replicated) whose "
            "replicas the flow scales." % (where, mode)
        )
    endpoint_mode = value.get("endpoint_mode")
    if endpoint_mode is not None and endpoint_mode not in ENDPOINT_MODES:
        raise FlowError("%s.endpoint_mode=%r is not one of %s." % (where, endpoint_mode, ", ".join(ENDPOINT_MODES)))
    placement = _mapping(value.get("placement"), where + ".placement")
    _only(placement, ("constraints", "preferences", "max_replicas_per_node"), where + ".placement")
    constraints = placement.get("constraints") or []
    if isinstance(constraints, dict):  # the old mapping form: {node.role: manager}
        constraints = ["%s==%s" % item for item in constraints.items()]
    if not isinstance(constraints, list) or not all(isinstance(c, str) and _constraint_ok(c) for c in constraints):
        raise FlowError(
            "%s.placement.constraints=%r is not valid: a list of ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, "
            "for example node.role==worker." % (where, constraints)
        )
    spread = []
    for preference in placement.get("preferences") or []:
        if not isinstance(preference, dict) or set(preference) != {"spread"} or not preference["spread"]:
            raise FlowError(
                "%s.placement.preferences item %r is not valid: only {spread: ATTRIBUTE} exists." % (where, preference)
            )
        spread.append(str(preference["spread"]))
    resources = _mapping(value.get("resources"), where + ".resources")
    _only(resources, ("limits", "reservations"), where + ".resources")
    return DeploySpec(
        replicas=_whole(value.get("replicas"), where + ".replicas", minimum=0),
        endpoint_mode=endpoint_mode,
        labels=_as_mapping(value.get("labels"), where, "labels"),
        constraints=constraints,
        spread=spread,
        max_replicas_per_node=_whole(placement.get("max_replicas_per_node"), where + ".placement.max_replicas_per_node"),
        update_config=_update_config(value.get("update_config"), where + ".update_config", "update_config"),
        rollback_config=_update_config(value.get("rollback_config"), where + ".rollback_config", "rollback_config"),
        restart_policy=_restart_policy(value.get("restart_policy"), where + ".restart_policy"),
        limits=_resources(resources.get("limits"), where + ".resources.limits", ("cpus", "memory", "pids")),
        reservations=_resources(resources.get("reservations"), where + ".resources.reservations", ("cpus", "memory")),
    )


def _mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FlowError("%s must be a mapping." % where)
    return value


def _only(value, allowed, where):
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise FlowError(
            "%s: key(s) %s are not supported. Supported: %s." % (where, ", ".join(unknown), ", ".join(sorted(allowed)))
        )


def _constraint_ok(text):
    return bool(_CONSTRAINT_RE.match(text))


def _whole(value, where, minimum=1):
    if value is None:
        return None
    if isinstance(value, bool) or not re.match(r"^[0-9]+$", str(value).strip()) or int(value) < minimum:
        raise FlowError("%s=%r is not valid: use a whole number of %d or more." % (where, value, minimum))
    return int(value)


def _update_config(value, where, kind):
    if value is None:
        return None
    section = _mapping(value, where)
    _only(section, _UPDATE_KEYS, where)
    result = {}
    if "parallelism" in section:
        result["Parallelism"] = _whole(section["parallelism"], where + ".parallelism", minimum=0)
    for key, api_key in (("delay", "Delay"), ("monitor", "Monitor")):
        if key in section:
            result[api_key] = parse_duration_ns(section[key], "%s.%s" % (where, key))
    if "failure_action" in section:
        allowed = _FAILURE_ACTIONS[kind]
        if section["failure_action"] not in allowed:
            raise FlowError("%s.failure_action=%r is not one of %s." % (where, section["failure_action"], ", ".join(allowed)))
        result["FailureAction"] = section["failure_action"]
    if "max_failure_ratio" in section:
        try:
            ratio = float(section["max_failure_ratio"])
        except (TypeError, ValueError):
            ratio = -1.0
        if not 0 <= ratio <= 1:
            raise FlowError("%s.max_failure_ratio=%r is not a number from 0 to 1." % (where, section["max_failure_ratio"]))
        result["MaxFailureRatio"] = ratio
    if "order" in section:
        if section["order"] not in _UPDATE_ORDERS:
            raise FlowError("%s.order=%r is not one of %s." % (where, section["order"], ", ".join(_UPDATE_ORDERS)))
        result["Order"] = section["order"]
    return result


def _restart_policy(value, where):
    if value is None:
        return None
    section = _mapping(value, where)
    _only(section, ("condition", "delay", "max_attempts", "window"), where)
    result = {}
    if "condition" in section:
        if section["condition"] not in SWARM_RESTART_CONDITIONS:
            raise FlowError(
                "%s.condition=%r is not one of %s." % (where, section["condition"], ", ".join(SWARM_RESTART_CONDITIONS))
            )
        result["Condition"] = section["condition"]
    for key, api_key in (("delay", "Delay"), ("window", "Window")):
        if key in section:
            result[api_key] = parse_duration_ns(section[key], "%s.%s" % (where, key))
    if "max_attempts" in section:
        result["MaxAttempts"] = _whole(section["max_attempts"], where + ".max_attempts", minimum=0)
    return result


def _resources(value, where, allowed):
    section = _mapping(value, where)
    _only(section, allowed, where)
    result = {}
    if section.get("cpus") is not None:
        try:
            cpus = float(str(section["cpus"]).strip())
        except ValueError:
            cpus = 0.0
        if cpus <= 0:
            raise FlowError("%s.cpus=%r is not a positive number of CPUs (for example 0.5)." % (where, section["cpus"]))
        result["NanoCPUs"] = round(cpus * 10**9)
    if section.get("memory") is not None:
        result["MemoryBytes"] = parse_bytes(section["memory"], where + ".memory")
    if section.get("pids") is not None:
        result["Pids"] = _whole(section["pids"], where + ".pids")
    return result


def parse_bytes(value, where):
    """Compose byte values: ``512m``, ``1.5gb``, ``1024`` (units of 1024, as Compose reads them)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _BYTES_RE.match(str(value).strip())
    if not match or float(match.group(1)) <= 0:
        raise FlowError("%s=%r is not a size (examples: 512m, 1g, 1048576)." % (where, value))
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])
