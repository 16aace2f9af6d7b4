# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every flow step of one service shares: its settings, the engine (backend), the state store and
the registrar in Consul, the locks it took, and what it reports (progress lines, warnings, the
interrupted proxy switches it settled, the result).

Rules every step keeps:
- the live color is never stopped, removed or replaced;
- a step that fails undoes what it started and leaves state as it was;
- state is written once, with check-and-set, after the engine work succeeded;
- two steps on one service never interleave (``lock``); check mode takes no lock and changes nothing;
- a step confirms it still holds its lock before every engine change (``fence``), and its state writes
  check the lock's session in the same Consul transaction: a run that lost its lock stops, undoes only
  its own new instances and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import ServiceLock
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import StateStore
from ansible_collections.dockerflow.flow.plugins.module_utils.options import default
from ansible_collections.dockerflow.flow.plugins.module_utils.pause_points import pause_at
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import Registrar
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import (
    UNCHECKED,
    PendingSwitch,
    settled_line,
    unchecked_line,
)

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Backend, Instance
    from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode


@dataclass
class FlowSettings:
    """Resolved options of one flow step (options.py: their sources and defaults)."""

    service: str
    project: str | None = None
    target: str | None = None
    compose_path: str | None = None
    env_files: list | None = None
    side_targets: list = field(default_factory=partial(default, "side_targets"))
    profiles: list = field(default_factory=partial(default, "profiles"))
    pull_side_targets: bool = default("pull_side_targets")
    blue_green: bool = default("blue_green")
    scale: object = None
    max_instances: int | None = None
    pull: str | None = None  # asked for; else the Compose file's pull_policy, else the option's default
    build: bool = default("build")
    registry: str | None = None
    health_path: str | None = None
    health_port: int | None = None
    health_timeout: int = default("health_timeout")
    service_port: int | None = None
    publish_address: str = default("publish_address")
    service_address: str = "127.0.0.1"
    keep_releases: int = default("keep_releases")
    deployed_by: str | None = None
    force: bool = default("force")
    color: str | None = None
    stop_timeout: int | None = None
    lock_timeout: int = default("lock_timeout")
    lock_ttl: int = default("lock_ttl")
    legacy_names: bool = default("legacy_names")


def now() -> str:
    """The time a release record carries (UTC, ISO 8601)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FlowContext:
    """The shared context of the steps one module runs on one service (see the module docstring)."""

    def __init__(self, backend: Backend | None, consul_client: ConsulClient, settings: FlowSettings,
                 check_mode: bool = False) -> None:
        self.backend = backend
        self.client = consul_client
        self._locks: list[ServiceLock] = []  # the locks this flow made; those it holds fence its changes and writes
        self.store = StateStore(consul_client, fence=self.held_locks)
        self.registrar = Registrar(consul_client, legacy_names=settings.legacy_names)
        self.settings = settings
        self.check_mode = check_mode
        self.steps: list[str] = []
        self.warnings: list[str] = []
        # Set by flow_stop_old for a routed service: waits until the proxy finished requests to old colors (their
        # backends, given: after a switch without a reload, the worker that serves the live color serves them too).
        self.wait_for_drain: Callable[[list[str]], float] | None = None
        # Set by the modules that reach the proxy (flow_stop_old, flow_scale): connects to it (proxy_node.ProxyNode),
        # to ask it when it stopped sending requests to instances that leave (instances.quiesce).
        self.reach_proxy: Callable[[], ProxyNode] | None = None
        # Set by the modules that reach the proxy (flow_stop_old; flow_proxy settles through ProxyFlow itself):
        # settles an interrupted switch, document -> document (switch_intent, proxy_flow.proxy_reconciler).
        self.switch_reconciler: Callable[[dict], dict] | None = None
        self.reconciled: dict[str, dict] = {}  # service -> how an interrupted switch was settled: the result's ``reconciled``

    # -- what the run reports ------------------------------------------------------------------------
    def progress(self, line: str) -> None:
        self.steps.append(line)

    def warn(self, line: str) -> None:
        """A warning made of a progress-style line: capitalized, with a full stop."""
        self.warnings.append(line[0].upper() + line[1:] + ".")

    def checkpoint(self, step: str) -> None:
        """A pause point for the fault and AWX tests (pause_points.py): inert unless they set its variables."""
        pause_at(step)

    def result(self, changed: bool, msg: str, state_before: dict, state_after: dict,
               instances_before: list[Instance], instances_after: list[Instance], **extra: Any) -> dict:
        """A step's module result: the state after, the steps it took, and a diff of colors and instances."""
        result = {
            "changed": changed,
            "msg": msg,
            "service": self.settings.service,
            "live_color": state_after.get("live_color"),
            "deployed_color": state_after.get("deployed_color"),
            "steps": self.steps,
            "diff": {"before": summary(state_before, instances_before), "after": summary(state_after, instances_after)},
        }
        result.update(extra)
        return result

    # -- the locks -------------------------------------------------------------------------------------
    def lock(self, operation: str, name: str | None = None) -> ServiceLock | NoLock:
        """The lock of this service, or of ``name`` (the proxy locks itself while it renders); none in check mode."""
        if self.check_mode:
            return NoLock()
        name = name or self.settings.service
        lock = ServiceLock(
            self.client,
            name,
            timeout=self.settings.lock_timeout,
            ttl=self.settings.lock_ttl,
            operation=operation,
            on_wait=lambda holder: self._note_wait(name, holder),
            on_abandoned=lambda holder, waited: self._note_abandoned(name, holder, waited),
        )
        self._locks.append(lock)
        return lock

    def held_locks(self) -> list[ServiceLock]:
        return [lock for lock in self._locks if lock.held]

    def fence(self, doing: str) -> None:
        """Before an engine change: LockLost unless this run still holds every lock it took (no-op in check mode)."""
        for lock in self.held_locks():
            lock.confirm(doing)

    def _note_wait(self, name: str, holder: str | None) -> None:
        line = "waiting for the lock of %s held by %s" % (name, holder or "a finished run (lock-delay)")
        if not self.steps or self.steps[-1] != line:
            self.progress(line)

    def _note_abandoned(self, name: str, holder: str, waited: float) -> None:
        line = ("the lock of %s was left by %s, which ended without releasing it (killed, or cut off from Consul); "
                "it expired and this run took it after waiting %.0fs" % (name, holder, waited))
        self.progress(line)
        self.warn(line)

    # -- the state, an interrupted proxy switch settled first (switch_intent) -----------------------------
    def settled_state(self) -> dict:
        """The service's state, with an interrupted proxy switch settled first when this step can ask the proxy;
        otherwise noted, and the step's guard (refuse_if_possibly_served) keeps both colors."""
        state = self.store.read(self.settings.service)[0]
        if PendingSwitch.of(state) is None:
            return state
        if self.switch_reconciler is not None:
            return self.switch_reconciler(state)
        self.note_unchecked(state, "this module does not reach the proxy")
        return state

    def note_settled(self, service: str, intent: PendingSwitch, outcome: str, serving_generation: str | None,
                     after: dict) -> None:
        line = settled_line(service, intent, outcome, serving_generation, after.get("live_color"), self.check_mode)
        self.reconciled[service] = dict(intent.as_dict(), outcome=outcome, live_color=after.get("live_color"), msg=line)
        self.progress(line)
        self.warn(line)

    def note_unchecked(self, state: dict, reason: str) -> None:
        intent = PendingSwitch.of(state)
        line = unchecked_line(state["service"], intent, state.get("live_color"), reason)
        self.reconciled[state["service"]] = dict(intent.as_dict(), outcome=UNCHECKED, live_color=state.get("live_color"),
                                                 msg=line)
        self.progress(line)
        self.warnings.append(line)


class Step:
    """One step (deploy.Deploy, scale.Scale, ...) over the context; ``run()`` reads as the step's story."""

    def __init__(self, flow: FlowContext) -> None:
        self.flow = flow
        self.settings = flow.settings

    def run(self) -> dict:
        raise NotImplementedError


def summary(state: dict, instances: list[Instance]) -> dict:
    """The colors and instance counts a result's diff shows."""
    per_color: dict[str, dict[str, int]] = {}
    for instance in instances:
        entry = per_color.setdefault(instance.color, {"running": 0, "stopped": 0})
        entry["running" if instance.running else "stopped"] += 1
    return {
        "live_color": state.get("live_color"),
        "deployed_color": state.get("deployed_color"),
        "instances": per_color,
    }


class NoLock:
    """What ``lock`` gives in check mode: a context that locks nothing."""

    def __enter__(self) -> NoLock:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False
