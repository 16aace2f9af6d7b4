# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every flow module shares: argument specs, option resolution and error handling.

Options that may come from ``FLOW_*`` variables or ``docker-flow.yml`` have
no default in the argument spec, so an unset parameter can be told apart from
one set to the default; config.resolve applies the defaults last.
"""

from __future__ import annotations

import dataclasses
import os
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockerflow.flow.plugins.module_utils import config, options
from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import exposure_warnings
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import connect, default_probe_address
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import EngineBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.selection import BACKENDS, select_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient, client_from_options
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, access_log_choice
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_words import config_word
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_drain import wait_drained
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import proxy_reconciler
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_limits import check_nofile
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import DRIFT_OPTIONS, ProxyNode
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowSettings
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.flow import Flow

# An argument spec: option name -> its AnsibleModule entry (type, default, aliases, ...).
ArgumentSpec = dict[str, dict[str, Any]]

# The option groups of options.py, as argument specs.
DOCKER_ARGS = options.group_spec("docker")
CONSUL_ARGS = options.group_spec("consul")
SERVICE_ARGS = options.group_spec("service")
PROXY_ARGS = options.group_spec("proxy")


def argument_spec(*groups: ArgumentSpec, **extra: dict[str, Any]) -> ArgumentSpec:
    spec = {}
    for group in groups + (extra,):
        for name, entry in group.items():
            spec[name] = dict(entry)
    return spec


def _check_positive(values: Mapping[str, Any], names: Iterable[str]) -> None:
    for name in names:
        value = values.get(name)
        if value is not None and value < 1:
            raise FlowError("%s=%r is not valid: use a whole number of 1 or more." % (name, value))


def fail_on_infinite_integers(argument_spec: ArgumentSpec, supports_check_mode: bool) -> None:
    """fail_json naming the integer options given an infinite value (``.inf``, ``inf``).

    ansible-core's int check turns them into an OverflowError it does not catch (a NaN or a word
    gets its clean message), so the module dies before it has an AnsibleModule to fail with.
    One whose options are all ``raw`` gets the same parameters, keeps ``no_log``, and reports."""
    lenient = {
        name: dict(type="raw", aliases=spec.get("aliases", []), no_log=spec.get("no_log", False))
        for name, spec in argument_spec.items()
    }
    module = AnsibleModule(argument_spec=lenient, supports_check_mode=supports_check_mode)
    infinite = sorted(
        name for name, spec in argument_spec.items()
        if spec.get("type") == "int" and _is_infinite(module.params.get(name))
    )
    if infinite:
        module.fail_json(msg="%s: infinity is not valid for %s: use a whole number." % (
            ", ".join("%s=%r" % (name, module.params[name]) for name in infinite),
            "this option" if len(infinite) == 1 else "these options"))


def _is_infinite(value: object) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and abs(float(value)) == float("inf")
    except (TypeError, ValueError):
        return False


class FlowModule:
    """An AnsibleModule plus the resolved options, a backend and a Consul client."""

    # Every option config.resolve merges from the parameter, FLOW_* and docker-flow.yml.
    OPTION_NAMES = tuple(option.name for option in options.TABLE if option.resolved and option.modules)

    def __init__(
        self, argument_spec: ArgumentSpec, supports_check_mode: bool = True, module_name: str | None = None, **kwargs: Any
    ) -> None:
        """``module_name`` (a key of option_type.MODULES) limits the options resolved to those it uses: the
        shared options it accepts but does not use are ignored, their FLOW_* variables unread."""
        try:
            self.module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=supports_check_mode, **kwargs)
        except OverflowError:
            fail_on_infinite_integers(argument_spec, supports_check_mode)
            raise
        self.params = self.module.params
        self.uses = options.used_by(module_name) if module_name else None
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.current_flow: Flow | None = None  # the Flow an action built, whose warnings the result carries
        self._proxy_node: ProxyNode | None = None

    def resolve(self) -> dict[str, Any]:
        """Merge parameters, FLOW_* environment and docker-flow.yml; derive project and service names."""
        params = self.params
        project_dir = params.get("project_dir") or _from_env(options.OPTIONS["project_dir"].env) or os.getcwd()
        if not os.path.isdir(project_dir):
            raise FlowError("project_dir %s is not a directory." % project_dir)
        flow_file = params.get("flow_file")
        flow_file_path = os.path.join(project_dir, flow_file or config.DEFAULT_FLOW_FILE)
        file_values = config.read_flow_file(flow_file_path, required=bool(flow_file))
        if "proxy_docker_host" in params and (self.uses is None or "proxy_docker_host" in self.uses):
            # the modules that act on the proxy, where the original used these
            for warning in config.ignored_option_warnings(file_values, flow_file_path):
                self.module.warn(warning)
        names = [name for name in self.OPTION_NAMES if name in params and (self.uses is None or name in self.uses)]
        values, sources = config.resolve(params, names, file_values=file_values)
        if values.get("compose_path"):
            values["compose_path"] = os.path.join(project_dir, values["compose_path"])
            compose_dir = os.path.dirname(values["compose_path"])
        else:
            compose_dir = project_dir
        if "project" in values and not values["project"]:
            values["project"] = _compose_project_name(os.path.basename(os.path.abspath(compose_dir)))
            sources["project"] = "default"
        if "service_name" in values and not values["service_name"]:
            # One DNS label, so the proxy can look it up in Consul DNS: Compose allows '_' and '.'.
            values["service_name"] = re.sub(r"[_.]+", "-", "%s-%s" % (values.get("project"), values.get("target")))
            sources["service_name"] = "default"
        if "service_address" in values and not values["service_address"]:
            values["service_address"] = default_probe_address(values.get("docker_host"), values.get("publish_address"))
        _check_positive(values, ("health_timeout", "lock_timeout", "max_instances", "drain_timeout"))
        if values.get("backend") not in (None, *BACKENDS):
            raise FlowError(
                "backend=%r (from %s) is not valid: use one of %s."
                % (values["backend"], sources.get("backend"), ", ".join(BACKENDS))
            )
        if values.get("lock_ttl") is not None and not 10 <= values["lock_ttl"] <= 86400:
            raise FlowError("lock_ttl=%r is not valid: use 10 to 86400 seconds (a Consul session's TTL)." % values["lock_ttl"])
        for name in ("project", "target", "service_name"):
            if name in values:
                _check_name(name, values[name])
        self.values, self.sources = values, sources
        return values

    def _value(self, name: str) -> Any:
        """The resolved value of option ``name``, else (an option this module does not resolve, or an empty
        value) the table's default."""
        return self.values.get(name) or options.default(name)

    def _value_unless_none(self, name: str) -> Any:
        """As _value, but false and 0 are values: only None takes the default."""
        value = self.values.get(name)
        return options.default(name) if value is None else value

    def _docker_timeout(self) -> int:
        return self.params.get("docker_timeout") or options.default("docker_timeout")

    def docker_backend(self) -> EngineBackend:
        client, warnings = connect(
            self.values.get("docker_host"), self.values.get("cert_path"), self.values.get("tls_verify"),
            timeout=self._docker_timeout(),
        )
        for warning in warnings:
            self.module.warn(warning)
        ContainerBackend(client).ping()
        where = self.values.get("docker_host") or os.environ.get("DOCKER_HOST") or "the local socket"
        backend = select_backend(client, self._value("backend"), where)
        if backend.registration_owner != "flow":
            for name in ("publish_address", "service_address"):
                if self.sources.get(name) not in (None, "default"):
                    self.module.warn(
                        "%s does not apply to Swarm services: their tasks publish on every address of their node, "
                        "and the node's registrator registers the node's address." % name
                    )
        return backend

    def proxy_node(self) -> ProxyNode:
        """The proxy container on ``proxy_docker_host`` (else the service's engine); connected once a run."""
        if self._proxy_node is None:
            self._proxy_node = self._connect_proxy()
        return self._proxy_node

    def _connect_proxy(self) -> ProxyNode:
        values = self.values
        host = values.get("proxy_docker_host") or values.get("docker_host")
        # The service's cert_path is for its own engine: it only applies when the proxy shares that engine.
        cert_path = values.get("proxy_docker_cert_path") or (None if values.get("proxy_docker_host") else values.get("cert_path"))
        verify = values.get("proxy_tls_verify") if values.get("proxy_tls_verify") is not None else values.get("tls_verify")
        client, warnings = connect(host, cert_path, verify, timeout=self._docker_timeout())
        for warning in warnings:
            self.module.warn(warning.replace("docker_host", "proxy_docker_host"))
        dns_host, _colon, dns_port = self._value("consul_dns").rpartition(":")
        try:
            dns_port = int(dns_port)
        except ValueError:
            raise FlowError("consul_dns=%r is not valid: use HOST:PORT." % values.get("consul_dns"))
        settings = ProxySettings(
            http_address=self._value("proxy_listen_address"),
            http_port=self._value("proxy_http_port"),
            https_port=self._value("proxy_https_port"),
            stats_address=self._value("proxy_stats_address"),
            admin_address=self._value("proxy_admin_address"),
            stats_port=self._value("proxy_stats_port"),
            admin_port=self._value("proxy_admin_port"),
            consul_dns_address=dns_host or ProxySettings.consul_dns_address,
            consul_dns_port=dns_port,
            max_servers=self._value_unless_none("proxy_max_servers"),
            access_log=access_log_choice(self._value_unless_none("proxy_access_log")),
            acme_consul=self._value_unless_none("proxy_acme_consul"),
            acme_consul_token=self.values.get("proxy_acme_consul_token") or None,
        ).validated()
        master_port = self._value("proxy_master_port")
        config_word(master_port, "port", "proxy_master_port")
        for warning in exposure_warnings(settings.stats_address, settings.admin_address):
            self.module.warn(warning)
        # A running proxy is compared only with what this run sets: defaults say nothing of how it was made.
        asked_for = {name for name in DRIFT_OPTIONS if self.sources.get(name) not in (None, "default")}
        return ProxyNode(
            client, settings, name=self._value("proxy_name"), image=self._value("proxy_image"), master_port=master_port,
            asked_for=asked_for, nofile=check_nofile(self._value_unless_none("proxy_nofile")),
        )

    def consul_client(self) -> ConsulClient:
        client = client_from_options(self.values, self._value_unless_none("consul_validate_certs"))
        client.ping()
        return client

    def flow(self, engine: bool = True, **overrides: Any) -> Flow:
        """A Flow over the resolved options; ``overrides`` are module-specific settings.

        ``engine=False`` skips connecting to the service's Docker engine (the proxy step needs none).
        """
        values = self.values
        settings = FlowSettings(
            service=values["service_name"],
            project=values.get("project"),
            target=values.get("target"),
            compose_path=values.get("compose_path"),
            env_files=values.get("env_files"),
            side_targets=self._value("side_targets"),
            profiles=self._value("profiles"),
            pull_side_targets=bool(values.get("pull_side_targets")),
            blue_green=self._value_unless_none("blue_green"),
            scale=values.get("scale"),
            max_instances=values.get("max_instances"),
            pull=self.values.get("pull") if self.sources.get("pull") not in (None, "default") else None,
            build=bool(values.get("build")),
            registry=values.get("registry"),
            health_path=values.get("health_path"),
            health_port=values.get("health_port"),
            health_timeout=self._value("health_timeout"),
            publish_address=self._value("publish_address"),
            service_address=values.get("service_address") or "127.0.0.1",
            keep_releases=self._value_unless_none("keep_releases"),
            lock_timeout=self._value("lock_timeout"),
            lock_ttl=self._value("lock_ttl"),
            **overrides
        )
        backend = self.docker_backend() if engine else None
        self.current_flow = Flow(backend, self.consul_client(), settings, check_mode=self.module.check_mode)
        return self.current_flow

    def step_settings(self) -> dict[str, Any]:
        """The step options this module uses that are FlowSettings fields, as ``flow``'s overrides (deploy's
        service_port, force, ...; stop-old's stop_timeout): each module's list is its row in the option table."""
        fields = {field.name for field in dataclasses.fields(FlowSettings)}
        return {name: self.params[name] for name in sorted(self.uses or ())
                if options.OPTIONS[name].group == "step" and name in fields}

    def routed_flow(self, **overrides: Any) -> Flow:
        """A Flow whose steps reach the proxy: stop-old waits until it drained the old release, and an interrupted
        switch is settled by asking it (under its lock) instead of refusing."""
        flow = self.flow(**overrides)
        flow.wait_for_drain = lambda backends: wait_drained(self.proxy_node(), self.values["drain_timeout"], backends)
        flow.reach_proxy = self.proxy_node
        flow.switch_reconciler = proxy_reconciler(flow, self.proxy_node)
        return flow

    def _pass_on_warnings(self) -> None:
        """The warnings of the Flow the action built become the module's (exit_json and fail_json carry them)."""
        for warning in self.current_flow.warnings if self.current_flow else ():
            self.module.warn(warning)

    def _reconciled(self) -> dict[str, Any] | None:
        """How the flow settled an interrupted proxy switch (switch_intent), for the result's ``reconciled``."""
        return getattr(self.current_flow, "reconciled", None)

    def run(self, action: Callable[[FlowModule], dict[str, Any]]) -> None:
        """Call ``action(self)`` and exit with its result; FlowError becomes a one-line failure."""
        try:
            self.resolve()
            result = action(self)
        except FlowError as error:
            details = dict(error.details)
            self._pass_on_warnings()  # a failure's warnings matter most: "undoing ... was incomplete"
            if self._reconciled():
                details.setdefault("reconciled", self._reconciled())
            self.module.fail_json(msg=error.msg, **details)
        except Exception as error:  # a bug: keep the traceback but still one line on top
            self._pass_on_warnings()
            self.module.fail_json(
                msg="Unexpected %s: %s" % (error.__class__.__name__, str(error).splitlines()[0] if str(error) else ""),
                exception=traceback.format_exc(),
            )
        self._pass_on_warnings()
        if self._reconciled():
            result.setdefault("reconciled", self._reconciled())
        if not self.module._diff:
            result.pop("diff", None)
        result.setdefault("option_sources", {k: v for k, v in self.sources.items() if v != "default"})
        self.module.exit_json(**result)


def _from_env(names: Iterable[str]) -> str | None:
    """The first of the environment variables ``names`` that is set and not empty."""
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


def _compose_project_name(directory_name: str) -> str:
    """Compose's rule: lower case, only [a-z0-9_-], starting with a letter or digit."""
    cleaned = "".join(ch for ch in directory_name.lower() if ch.isalnum() or ch in "_-")
    return cleaned.lstrip("_-") or "default"


def _check_name(name: str, value: object) -> None:
    if value is None:
        return
    if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$", str(value)):
        raise FlowError(
            "%s=%r is not valid: use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit."
            % (name, value)
        )
