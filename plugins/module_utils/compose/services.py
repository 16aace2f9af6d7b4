# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One raw Compose service into a ServiceSpec.

Only the keys listed in SUPPORTED_SERVICE_KEYS are understood; any other key is an error
naming it, because silently ignoring (say) ``develop`` would deploy something
other than what the file describes. A new key: add it to SUPPORTED_SERVICE_KEYS, a field to
ServiceSpec (``specs``), and its parsing here (a section of its own gets a file beside
``ports``, ``mounts`` and ``deploy_section``).
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.build import parse_build
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.deploy_section import parse_deploy
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.engine_options import (
    ENGINE_OPTION_KEYS,
    parse_engine_options,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.env_files import service_env_files, service_label_files
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.mounts import service_files, service_mounts
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.ports import parse_port
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import (
    FIXED_ADDRESS_KEYS,
    BuildSpec,
    DeploySpec,
    ServiceSpec,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import (
    as_list,
    as_mapping,
    parse_duration_ns,
    whole_number,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject

# Read and left out of the containers: ``develop`` (``watch``) is what ``docker compose watch`` does while a developer
# edits; ``docker compose up`` ignores it, and so does a deploy (docs/compose-keys.md).
IGNORED_SERVICE_KEYS = ("develop",)
SUPPORTED_SERVICE_KEYS = frozenset(
    [
        "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
        "labels", "networks", "restart", "healthcheck", "depends_on", "extends", "container_name",
        "hostname", "user", "working_dir", "stop_signal", "stop_grace_period", "extra_hosts", "tmpfs",
        "read_only", "init", "cap_add", "cap_drop", "logging", "pull_policy", "deploy",
        "secrets", "configs", "profiles", "build", "label_file", "scale", *IGNORED_SERVICE_KEYS,
    ]
) | ENGINE_OPTION_KEYS
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
# Compose's pull_policy values, as the pull policies of the backends (backends.engine.PULL_POLICIES); ``build``:
# build the image (of a service with image and build) on every deploy (steps.builds). The schedules (daily,
# weekly, every_<duration>) are ``refresh`` with the age after which the image is pulled again.
PULL_POLICY_VALUES = {"always": "always", "missing": "missing", "if_not_present": "missing", "never": "never",
                      "build": "build"}
PULL_SCHEDULES_S = {"daily": 24 * 3600, "weekly": 7 * 24 * 3600}
DEPENDS_ON_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
# What to do instead, for the unsupported keys real files use most.
_UNSUPPORTED_HINTS = {
    "annotations": "annotations need engine API 1.43 and the Docker SDK cannot send them: use labels instead",
}
# Compose keys Flow reads and refuses, each for a reason no code here can remove: the rest of a one-line error.
MODEL_RUNNER_REFUSAL = "needs Docker Model Runner, which this engine lacks (Flow cannot provide AI models); remove it"
_REFUSED_SERVICE_KEYS = {
    "credential_spec": (
        "sets a Windows container's gMSA identity (Compose passes it as security_opt credentialspec=...), which an "
        "engine running Linux containers refuses; remove it"
    ),
    "models": MODEL_RUNNER_REFUSAL,
}
_HEALTHCHECK_KEYS = frozenset(["test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"])
_HEALTHCHECK_TESTS = ("CMD", "CMD-SHELL", "NONE")


def normalize_service(project: ComposeProject, name: str) -> ServiceSpec:
    """Build the ServiceSpec of service ``name``; unsupported keys are errors that name them."""
    raw = project.services[name]
    where = "%s: service %s" % (project.path, name)
    directory = project.directory_of(name)
    _check_service_keys(raw, where)
    image, build, (pull_policy, pull_refresh_s) = _image_source(project, raw, where, directory)
    environment = _environment(project, raw, where, directory)
    restart = _restart(raw, where)
    grace = raw.get("stop_grace_period")
    return ServiceSpec(
        name=name,
        image=image,
        command=_command(raw.get("command"), where + ": command"),
        entrypoint=_command(raw.get("entrypoint"), where + ": entrypoint"),
        environment=environment,
        ports=[parse_port(item, where) for item in as_list(raw.get("ports"))],
        expose=[str(item) for item in as_list(raw.get("expose"))],
        mounts=service_mounts(project, raw, where, directory),
        secrets=service_files(project, raw, where, "secrets"),
        configs=service_files(project, raw, where, "configs"),
        labels=_labels(project, raw, where, directory),
        networks=_service_networks(project, raw, where),
        restart=restart,
        healthcheck=_healthcheck(raw, where),
        depends_on=parse_depends_on(raw, project.path, name),
        container_name=raw.get("container_name"),
        hostname=raw.get("hostname"),
        user=str(raw["user"]) if raw.get("user") is not None else None,
        working_dir=raw.get("working_dir"),
        stop_signal=raw.get("stop_signal"),
        stop_grace_period=(parse_duration_ns(grace, where + ": stop_grace_period") // 10**9) if grace is not None else None,
        extra_hosts=[str(item) for item in as_list(raw.get("extra_hosts"))],
        tmpfs=[str(item) for item in as_list(raw.get("tmpfs"))],
        read_only=bool(raw.get("read_only", False)),
        init=raw.get("init"),
        cap_add=[str(item) for item in as_list(raw.get("cap_add"))],
        cap_drop=[str(item) for item in as_list(raw.get("cap_drop"))],
        logging=raw.get("logging"),
        pull_policy=pull_policy,
        pull_refresh_s=pull_refresh_s,
        deploy=_deploy(raw, where),
        engine=parse_engine_options(project, raw, where),
        build=build,
    )


def _deploy(raw: dict[str, Any], where: str) -> DeploySpec:
    """The ``deploy`` section, its replicas from ``scale`` when the service sets that (Compose's older word)."""
    deploy = parse_deploy(raw.get("deploy"), where)
    scale = whole_number(raw.get("scale"), where + ": scale", minimum=0)
    if scale is None:
        return deploy
    if deploy.replicas is not None and deploy.replicas != scale:
        raise FlowError("%s: scale=%d and deploy.replicas=%d disagree: set one of them." % (where, scale, deploy.replicas))
    return dataclasses.replace(deploy, replicas=scale)


def _check_service_keys(raw: dict[str, Any], where: str) -> None:
    for key, reason in _REFUSED_SERVICE_KEYS.items():
        if key in raw:
            raise FlowError("%s: %s %s." % (where, key, reason))
    unknown = sorted(key for key in raw if key not in SUPPORTED_SERVICE_KEYS and not str(key).startswith("x-"))
    if unknown:
        hints = [hint for key, hint in _UNSUPPORTED_HINTS.items() if key in unknown]
        hint = " (%s)" % "; ".join(hints) if hints else ""
        raise FlowError(
            "%s: key(s) %s are not supported%s. Supported: %s."
            % (where, ", ".join(unknown), hint, ", ".join(sorted(SUPPORTED_SERVICE_KEYS)))
        )


def _image_source(
    project: ComposeProject, raw: dict[str, Any], where: str, directory: str
) -> tuple[str, BuildSpec | None, tuple[str | None, int | None]]:
    """(``image``, empty when Flow names what it builds; the ``build`` section; the pull policy and its refresh age)."""
    image = raw.get("image")
    build = parse_build(raw.get("build"), directory, project.variables, where)
    if not (image and isinstance(image, str)):
        if build is None:
            raise FlowError("%s has neither image nor build." % where)
        if image is not None:
            raise FlowError("%s: image=%r is not valid: use an image name, or leave it out to build one." % (where, image))
    pull_policy = _pull_policy(raw.get("pull_policy"), where)
    if pull_policy[0] == "build" and build is None:
        raise FlowError("%s: pull_policy build needs a build section (what to build the image from)." % where)
    return image or "", build, pull_policy


def _pull_policy(value: Any, where: str) -> tuple[str | None, int | None]:
    """Compose's pull_policy as (always, missing, never, build or refresh; the refresh age in seconds)."""
    if value is None:
        return None, None
    text = str(value)
    if text in PULL_POLICY_VALUES:
        return PULL_POLICY_VALUES[text], None
    if text in PULL_SCHEDULES_S:
        return "refresh", PULL_SCHEDULES_S[text]
    if text.startswith("every_"):
        age_ns = parse_duration_ns(text[len("every_"):], where + ": pull_policy " + text)
        if age_ns and age_ns >= 10**9:
            return "refresh", age_ns // 10**9
        raise FlowError("%s: pull_policy %s is not valid: use every_<duration> of a second or more (every_12h)." % (where, text))
    raise FlowError("%s: pull_policy=%r is not one of %s, daily, weekly or every_<duration>."
                    % (where, text, ", ".join(sorted(PULL_POLICY_VALUES))))


def _environment(project: ComposeProject, raw: dict[str, Any], where: str, directory: str) -> dict[str, str]:
    """``env_file`` files in order, then ``environment`` over them (bare names from the project's variables)."""
    environment = service_env_files(raw.get("env_file"), directory, project.variables, where + ": env_file")
    environment.update(as_mapping(raw.get("environment"), where, "environment", project.variables))
    return environment


def _labels(project: ComposeProject, raw: dict[str, Any], where: str, directory: str) -> dict[str, str]:
    """``label_file`` files in order, then ``labels`` over them, as Compose does."""
    labels = service_label_files(raw.get("label_file"), directory, project.variables, where + ": label_file")
    labels.update(as_mapping(raw.get("labels"), where, "labels"))
    return labels


def _restart(raw: dict[str, Any], where: str) -> str | None:
    restart = raw.get("restart")
    if restart is None:
        return None
    if str(restart).split(":", maxsplit=1)[0] not in RESTART_POLICIES:
        raise FlowError("%s: restart=%r is not one of %s." % (where, restart, ", ".join(RESTART_POLICIES)))
    return str(restart)


def parse_depends_on(raw: dict[str, Any], path: str, name: str) -> dict[str, str]:
    """Service ``name``'s ``depends_on`` (list or mapping form): dependency -> condition."""
    value = raw.get("depends_on")
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(item): "service_started" for item in value}
    if isinstance(value, dict):
        result = {}
        for dep, options in value.items():
            condition = (options or {}).get("condition", "service_started") if isinstance(options, dict) else None
            if condition not in DEPENDS_ON_CONDITIONS:
                raise FlowError("%s: service %r: depends_on.%s has an unknown condition %r." % (path, name, dep, condition))
            result[str(dep)] = condition
        return result
    raise FlowError("%s: service %r: depends_on must be a list or a mapping." % (path, name))


def _command(value: Any, where: str) -> list[str] | None:
    """``command``/``entrypoint``: a list as is, a string split as a shell would."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise FlowError("%s: cannot split %r: %s." % (where, value, exc))
    if isinstance(value, list):
        return [str(item) for item in value]
    raise FlowError("%s must be a string or a list." % where)


def _healthcheck(raw: dict[str, Any], where: str) -> dict[str, Any] | None:
    """``healthcheck`` in the Docker API's form (durations in ns); ``disable`` is test NONE."""
    value = raw.get("healthcheck")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FlowError("%s: healthcheck must be a mapping." % where)
    unknown = set(value) - _HEALTHCHECK_KEYS
    if unknown:
        raise FlowError("%s: healthcheck key(s) %s are not supported." % (where, ", ".join(sorted(unknown))))
    if value.get("disable"):
        return {"test": ["NONE"]}
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if test is not None and (not isinstance(test, list) or not test or test[0] not in _HEALTHCHECK_TESTS):
        raise FlowError("%s: healthcheck.test must be a string or a list starting with CMD, CMD-SHELL or NONE." % where)
    result: dict[str, Any] = {"test": [str(part) for part in test] if test else None}
    for key in ("interval", "timeout", "start_period"):
        if key in value:
            result[key] = parse_duration_ns(value[key], "%s: healthcheck.%s" % (where, key))
    if "retries" in value:
        try:
            result["retries"] = int(value["retries"])
        except (TypeError, ValueError):
            raise FlowError("%s: healthcheck.retries=%r is not a whole number." % (where, value["retries"]))
    return result


def _service_networks(project: ComposeProject, raw: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """The networks the service joins (``default`` when none is named, none with a network_mode), each with its
    aliases, in the order the container joins them: highest ``priority`` first, then the file's order (Compose's)."""
    value = raw.get("networks")
    if raw.get("network_mode") is not None:
        if value:
            raise FlowError("%s: network_mode and networks cannot be combined (as in Compose); remove one." % where)
        return {}
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
        result[str(key)] = _network_attachment(options or {}, "%s: networks.%s" % (where, key))
    return dict(sorted(result.items(), key=lambda item: -item[1].get("priority", 0)))


def _network_attachment(options: dict[str, Any], where: str) -> dict[str, Any]:
    """One network's endpoint options; the optional ones only when set, so the spec (and its config hash) of a
    service without them is what it was."""
    if "gw_priority" in options:
        raise FlowError(
            "%s.gw_priority needs Docker Engine API 1.48, which the Docker SDK 7.1 Flow uses cannot send; remove it "
            "(priority orders the networks a container joins)." % where
        )
    unknown = set(options) - {"aliases", "priority", *FIXED_ADDRESS_KEYS}
    if unknown:
        raise FlowError("%s key(s) %s are not supported." % (where, ", ".join(sorted(unknown))))
    attachment: dict[str, Any] = {"aliases": [str(alias) for alias in options.get("aliases") or []]}
    attachment.update({name: str(options[name]) for name in ("ipv4_address", "ipv6_address") if options.get(name)})
    if options.get("link_local_ips"):
        attachment["link_local_ips"] = [str(address) for address in as_list(options["link_local_ips"])]
    if options.get("priority") is not None:
        attachment["priority"] = _priority(options["priority"], where + ".priority")
    return attachment


def _priority(value: Any, where: str) -> int:
    """A network's priority: a whole number, negative too (Compose's default is 0)."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(str(value).strip())
    except ValueError:
        raise FlowError("%s=%r is not a whole number." % (where, value))
