# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The long tail of service keys: engine settings that mean the same for every instance.

``platform``, ``runtime``, ``network_mode``, ``stdin_open``, ``tty``, ``sysctls``, ``ulimits``,
the resource keys, ``devices``, ``dns*``, ``security_opt``, ``privileged``, ``pid``, ``ipc``,
``group_add`` and ``gpus`` become an ``EngineOptions``; each backend maps it onto its engine
(``backends.container_spec``, ``backends.swarm_spec``). What blue-green cannot do with a key is
refused by ``blue_green`` (the deployed target only), what Swarm cannot do by ``swarm_spec``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.hooks import parse_hooks, parse_pre_start
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import EngineOptions
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import (
    as_list,
    as_mapping,
    only_keys,
    parse_bytes,
    whole_number,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject

ENGINE_OPTION_KEYS = frozenset(
    [
        "platform", "runtime", "network_mode", "stdin_open", "tty", "sysctls", "ulimits", "mem_limit",
        "mem_reservation", "cpus", "cpu_shares", "shm_size", "devices", "dns", "dns_search", "dns_opt",
        "security_opt", "privileged", "pid", "ipc", "group_add", "gpus", "blkio_config", "post_start", "pre_stop",
        "pre_start",
    ]
)
NETWORK_MODES = ("bridge", "host", "none", "service:<name>", "container:<name>")
PID_MODES = ("host", "service:<name>", "container:<name>")
IPC_MODES = ("host", "private", "shareable", "none", "service:<name>", "container:<name>")
_GPU_KEYS = frozenset(["driver", "count", "device_ids", "capabilities", "options"])
# blkio_config's device lists: Compose key -> (the Docker SDK's host config argument, the entry's value key, bytes?)
_BLKIO_DEVICE_LISTS = {
    "weight_device": ("blkio_weight_device", "weight", "Weight", False),
    "device_read_bps": ("device_read_bps", "rate", "Rate", True),
    "device_write_bps": ("device_write_bps", "rate", "Rate", True),
    "device_read_iops": ("device_read_iops", "rate", "Rate", False),
    "device_write_iops": ("device_write_iops", "rate", "Rate", False),
}


def parse_engine_options(project: ComposeProject, raw: dict[str, Any], where: str) -> EngineOptions:
    """The EngineOptions of raw service ``raw``; ``where`` names the file and service for errors."""
    return EngineOptions(
        platform=_text(raw.get("platform"), where + ": platform"),
        runtime=_text(raw.get("runtime"), where + ": runtime"),
        network_mode=_namespace_mode(project, raw.get("network_mode"), NETWORK_MODES, where + ": network_mode"),
        stdin_open=flag(raw.get("stdin_open"), where + ": stdin_open"),
        tty=flag(raw.get("tty"), where + ": tty"),
        sysctls=as_mapping(raw.get("sysctls"), where, "sysctls"),
        ulimits=_ulimits(raw.get("ulimits"), where + ": ulimits"),
        mem_limit=_bytes(raw.get("mem_limit"), where + ": mem_limit"),
        mem_reservation=_bytes(raw.get("mem_reservation"), where + ": mem_reservation"),
        cpus=_cpus(raw.get("cpus"), where + ": cpus"),
        cpu_shares=whole_number(raw.get("cpu_shares"), where + ": cpu_shares", minimum=2),
        shm_size=_bytes(raw.get("shm_size"), where + ": shm_size"),
        devices=_devices(raw.get("devices"), where + ": devices"),
        dns=_texts(raw.get("dns")),
        dns_search=_texts(raw.get("dns_search")),
        dns_opt=_texts(raw.get("dns_opt")),
        security_opt=_texts(raw.get("security_opt")),
        privileged=flag(raw.get("privileged"), where + ": privileged"),
        pid=_namespace_mode(project, raw.get("pid"), PID_MODES, where + ": pid"),
        ipc=_namespace_mode(project, raw.get("ipc"), IPC_MODES, where + ": ipc"),
        group_add=_texts(raw.get("group_add")),
        gpus=_gpus(raw.get("gpus"), where + ": gpus"),
        blkio_config=_blkio_config(raw.get("blkio_config"), where + ": blkio_config"),
        post_start=parse_hooks(raw.get("post_start"), project.variables, where + ": post_start"),
        pre_stop=parse_hooks(raw.get("pre_stop"), project.variables, where + ": pre_stop"),
        pre_start=parse_pre_start(raw.get("pre_start"), project.variables, where + ": pre_start"),
    )


def flag(value: Any, where: str) -> bool:
    """A Compose boolean: YAML's true/false, or the text an interpolated variable leaves."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise FlowError("%s=%r is not a boolean: use true or false." % (where, value))


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)) or not str(value).strip():
        raise FlowError("%s=%r must be a non-empty string." % (where, value))
    return str(value)


def _texts(value: Any) -> list[str]:
    return [str(item) for item in as_list(value)]


def _bytes(value: Any, where: str) -> int | None:
    return None if value is None else parse_bytes(value, where)


def _cpus(value: Any, where: str) -> float | None:
    """A number of CPUs (``0.5``); 0 is no limit, as in Compose."""
    if value is None:
        return None
    try:
        cpus = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        cpus = None
    if cpus is None or cpus < 0:
        raise FlowError("%s=%r is not valid: use a number of CPUs, 0 for no limit (examples: 0.5, 2)." % (where, value))
    return cpus or None


def _namespace_mode(project: ComposeProject, value: Any, allowed: tuple[str, ...], where: str) -> str | None:
    """``network_mode``/``pid``/``ipc``: one of ``allowed``; a ``service:`` form must name a service of the file."""
    if value is None:
        return None
    text = str(value)
    kind, colon, name = text.partition(":")
    if colon and name and "%s:<name>" % kind in allowed:
        if kind == "service" and name not in project.services:
            services = ", ".join(sorted(project.services))
            raise FlowError("%s=%r names no service of this file. Services: %s." % (where, text, services))
        return text
    if not colon and text in allowed:
        return text
    raise FlowError("%s=%r is not one of %s." % (where, text, ", ".join(allowed)))


def _ulimits(value: Any, where: str) -> dict[str, dict[str, int]]:
    """``nofile: 1024`` (soft and hard alike) or ``nofile: {soft: 1024, hard: 4096}``."""
    result: dict[str, dict[str, int]] = {}
    if value is None:
        return result
    if not isinstance(value, dict):
        raise FlowError("%s must be a mapping of limit names to a number or {soft, hard}." % where)
    for name, limit in value.items():
        here = "%s.%s" % (where, name)
        if isinstance(limit, dict):
            if set(limit) != {"soft", "hard"}:
                raise FlowError("%s needs both soft and hard (and nothing else)." % here)
            soft = _limit(limit["soft"], here + ".soft")
            hard = _limit(limit["hard"], here + ".hard")
            if soft > hard:
                raise FlowError("%s: soft %d is above hard %d." % (here, soft, hard))
        else:
            soft = hard = _limit(limit, here)
        result[str(name)] = {"soft": soft, "hard": hard}
    return result


def _limit(value: Any, where: str) -> int:
    """A ulimit value: a whole number, or -1 for unlimited."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return value
    if str(value).strip() == "-1":
        return -1
    number = whole_number(value, where, minimum=0)
    return int(number or 0)


def _devices(value: Any, where: str) -> list[str]:
    """``host[:container[:permissions]]`` paths; CDI names (``vendor/class=name``) need an engine API newer than 1.41."""
    devices = []
    for item in as_list(value):
        text = str(item)
        if not text.startswith("/"):
            raise FlowError(
                "%s: %r is not a device path: use HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]] "
                "(CDI device names are not supported)." % (where, text)
            )
        devices.append(text)
    return devices


def _gpus(value: Any, where: str) -> list[dict[str, Any]]:
    """``gpus: all`` or a list of {driver, count, device_ids, capabilities, options}, as the engine's DeviceRequests."""
    if value is None:
        return []
    if value == "all":
        return [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]
    if not isinstance(value, list):
        raise FlowError("%s must be all or a list of device requests." % where)
    requests = []
    for index, item in enumerate(value):
        here = "%s[%d]" % (where, index)
        if not isinstance(item, dict):
            raise FlowError("%s must be a mapping of %s." % (here, ", ".join(sorted(_GPU_KEYS))))
        only_keys(item, _GPU_KEYS, here)
        if "count" in item and "device_ids" in item:
            raise FlowError("%s sets both count and device_ids; set one." % here)
        capabilities = [str(cap) for cap in as_list(item.get("capabilities"))] or ["gpu"]
        requests.append(
            {
                "Driver": str(item.get("driver") or ""),
                "Count": _gpu_count(item, here),
                "DeviceIDs": [str(device) for device in as_list(item.get("device_ids"))] or None,
                "Capabilities": [capabilities],
                "Options": as_mapping(item.get("options"), here, "options"),
            }
        )
    return requests


def _gpu_count(item: dict[str, Any], where: str) -> int:
    """How many GPUs: -1 (all) for ``count: all`` or when neither count nor device_ids is set, as Compose does."""
    if "device_ids" in item:
        return 0
    count = item.get("count", "all")
    return -1 if count == "all" else int(whole_number(count, where + ".count") or 0)


def _blkio_config(value: Any, where: str) -> dict[str, Any]:
    """``blkio_config`` as the Docker SDK's host config arguments (``blkio_weight``, ``blkio_weight_device``,
    ``device_read_bps``, ...); bps rates are byte values (``12mb``), iops and weights whole numbers."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FlowError("%s must be a mapping of weight, %s." % (where, ", ".join(_BLKIO_DEVICE_LISTS)))
    only_keys(value, ["weight", *_BLKIO_DEVICE_LISTS], where)
    result: dict[str, Any] = {}
    if value.get("weight") is not None:
        result["blkio_weight"] = _blkio_weight(value["weight"], where + ".weight")
    for key, (argument, value_key, engine_key, is_bytes) in _BLKIO_DEVICE_LISTS.items():
        entries = []
        for index, entry in enumerate(as_list(value.get(key))):
            here = "%s.%s[%d]" % (where, key, index)
            if not isinstance(entry, dict) or not entry.get("path") or value_key not in entry:
                raise FlowError("%s must be a mapping with path and %s." % (here, value_key))
            only_keys(entry, ["path", value_key], here)
            raw_value = entry[value_key]
            if is_bytes:
                number = parse_bytes(raw_value, "%s.%s" % (here, value_key))
            elif value_key == "weight":
                number = _blkio_weight(raw_value, "%s.%s" % (here, value_key))
            else:
                number = int(whole_number(raw_value, "%s.%s" % (here, value_key)) or 0)
            entries.append({"Path": str(entry["path"]), engine_key: number})
        if entries:
            result[argument] = entries
    return result


def _blkio_weight(value: Any, where: str) -> int:
    """A block IO weight: 10 to 1000, as the engine takes it."""
    weight = int(whole_number(value, where, minimum=10) or 0)
    if weight > 1000:
        raise FlowError("%s=%r is not valid: use a whole number from 10 to 1000." % (where, value))
    return weight
