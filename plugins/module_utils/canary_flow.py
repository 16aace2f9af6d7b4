# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary step (flow_canary, issue 13): a share of a routed service's requests on its newest release, raised
through a schedule while the proxy's own counters stay within the gate (canary_gate), then promoted.

A gated promotion, under the service's lock (no deploy, stop-old or other canary of the service meanwhile):
1. the canary is the newest release: deployed, running, not the color the proxy routes the service to;
2. each step sets its weight (ProxyFlow.split), then dwells, reading the backends' counters every POLL_SECONDS;
3. at a breach the weight goes back to 0 at once through the runtime API, then that is recorded, the release is
   marked failed in the history (step, weight, why, figures), the canary is stopped if asked, and the task fails:
   the live color serves every request, as before the canary;
4. once every step passed, the switch to the canary, with every guarantee of flow_proxy's (ProxyFlow.held).
A run killed mid-canary leaves the recorded weight, which the proxy keeps (a restart too: proxy_canary). The next
flow_canary run starts its schedule over from the first step; canary_weight=0 ends the canary; a flow_proxy
switch routes every request to one color and ends it too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.canary_gate import Counters, Schedule, breach
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import backend_name
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import (
    Canary,
    recorded_weight,
    runtime_weight_command,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow, proxy_lock_name
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import now
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.instances import deregister

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext

POLL_SECONDS = 0.5
Document = dict[str, Any]
Result = dict[str, Any]


class CanaryFlow:
    def __init__(self, flow: FlowContext, node: ProxyNode, switch_timeout: float = 60) -> None:
        self.flow, self.node = flow, node
        self.proxy = ProxyFlow(flow, node, switch_timeout)
        self.service = flow.settings.service
        self.figures: list[dict[str, Any]] = []  # one entry a step: the result's canary_steps

    def run(self, weight: int | None, schedule: Schedule, color: str | None = None) -> Result:
        """``weight``: set that share and return (0 ends the canary); None: the gated promotion of ``schedule``."""
        first = Canary(color or "", schedule.steps[0] if weight is None else weight).validated()  # before anything
        with self.flow.lock("canary"):
            document = self.flow.store.read(self.service)[0]
            canary = Canary(self._canary_color(document, color), first.weight)
            live = document["routes"]["color"]
            if self.flow.check_mode:
                return self._predicted(document, canary, live, schedule if weight is None else None)
            if weight is not None:
                return self._set(document, canary, live)
            return self._promote(canary.color, live, schedule)

    def _canary_color(self, document: Document, color: str | None) -> str:
        """The color asked for (the newest release by default), if it can be a canary; else FlowError."""
        routes, service = document.get("routes") or {}, self.service
        if not routes:
            raise FlowError("Service %s has no route: route it with flow_proxy before a canary." % service)
        color = color or document.get("deployed_color")
        if colors.PLAIN in (color, routes["color"]):
            raise FlowError("A canary needs blue-green releases, and %s runs plain ones (blue_green=false)." % service)
        record = (document.get("colors") or {}).get(color) or {}
        if record.get("state", "running") != "running" or not record:
            raise FlowError("Service %s has no running %s release to make a canary of; deploy one first." % (service, color))
        if color == routes["color"]:
            raise FlowError("%s is the color the proxy routes %s to: deploy a new release to make a canary of it."
                            % (color, service))
        return color

    def _predicted(self, document: Document, canary: Canary, live: str, schedule: Schedule | None) -> Result:
        if schedule is None:
            return self._result(recorded_weight(document, canary.color) != canary.weight, _share(self.service, canary, live),
                                canary, live)
        steps = ", ".join("%d" % step for step in schedule.steps)
        return self._result(True, "Would route %s %% of %s's requests to %s, %gs a step, then switch to it unless the "
                            "gate trips." % (steps, self.service, canary.color, schedule.dwell), canary, live)

    def _set(self, document: Document, canary: Canary, live: str) -> Result:
        changed = recorded_weight(document, canary.color) != canary.weight
        servers = self.proxy.split(canary)
        self.flow.progress(_share(self.service, canary, live))
        if canary.weight == 0 and changed:
            self.flow.store.update(self.service, lambda doc: _mark_release(doc, canary.color, {
                "outcome": "aborted", "reason": "canary_weight=0", "time": now()}))
        return self._result(changed, _share(self.service, canary, live), canary, live, servers_up=servers,
                            outcome="weighted" if canary.weight else "aborted")

    def _promote(self, color: str, live: str, schedule: Schedule) -> Result:
        backends = (backend_name(self.service, color), backend_name(self.service, live))
        try:
            for step, weight in enumerate(schedule.steps, 1):
                start = self._counters(backends)  # before the weight: the gate counts the step's first answers too
                servers = self.proxy.split(Canary(color, weight))
                self.flow.progress("step %d: %d %% of the requests to %s (%d server(s) up), for %gs"
                                   % (step, weight, color, servers, schedule.dwell))
                self.flow.checkpoint("canary:dwell")
                reason, figures = self._dwell(backends, start, schedule)
                self.figures.append(dict(figures, step=step, weight=weight))
                if reason:
                    self._abort(color, live, self.figures[-1], reason, schedule)
        except FlowError as error:
            if error.details.get("outcome") == "aborted":
                raise
            raise FlowError("The canary of %s could not go on: %s %s" % (self.service, error.msg, self._unwatched(color)),
                            outcome="aborted", canary_steps=self.figures, live_color=live, color=color)
        with self.flow.lock("proxy", name=proxy_lock_name(self.node.name)):
            switched = self.proxy.held("present", color=color)
        self.flow.store.update(self.service, lambda doc: _mark_release(doc, color, {
            "outcome": "promoted", "steps": self.figures, "time": now()}))
        return dict(switched, outcome="promoted", canary_steps=self.figures,
                    msg="%s passed %d step(s) and is live: %s" % (color, len(self.figures), switched["msg"]))

    def _unwatched(self, color: str) -> str:
        """After a failure that is no breach: a canary the gate cannot watch gets weight 0 (best effort); says so."""
        try:
            self.proxy.split(Canary(color, 0))
        except FlowError as error:
            return "Putting its weight back to 0 failed too (%s): run flow_canary with canary_weight=0." % error.msg
        return "Its weight is back to 0."

    def _dwell(self, backends: tuple[str, str], start: tuple[Counters, Counters],
               schedule: Schedule) -> tuple[str | None, dict[str, Any]]:
        """Why the step fails (or None) and its figures (counted from ``start``), after ``schedule.dwell`` or at the
        first breach."""
        began = time.monotonic()
        while True:
            time.sleep(max(0.0, min(POLL_SECONDS, began + schedule.dwell - time.monotonic())))
            over = time.monotonic() - began >= schedule.dwell
            current = self._counters(backends)
            canary, baseline = current[0].since(start[0]), current[1].since(start[1])
            reason = breach(canary, baseline, schedule, over)
            if reason or over:
                figures = dict(canary.as_dict(), seconds=round(time.monotonic() - began, 2), live=baseline.as_dict(),
                               verdict="breach" if reason else "pass")
                return reason, figures

    def _counters(self, backends: tuple[str, str], attempts: int = 3) -> tuple[Counters, Counters]:
        """The canary's and the live color's counters; a loaded engine now and then returns an exec's output empty,
        so an answer without its header is asked again."""
        for _attempt in range(attempts - 1):
            try:
                return self._read_counters(backends)
            except FlowError:
                time.sleep(0.2)
        return self._read_counters(backends)

    def _read_counters(self, backends: tuple[str, str]) -> tuple[Counters, Counters]:
        answer = self.node.runtime(";".join(["show info"] + ["show stat %s 2 -1" % backend for backend in backends]))
        return Counters.of(answer, backends[0]), Counters.of(answer, backends[1])

    def _abort(self, color: str, live: str, figures: dict[str, Any], reason: str, schedule: Schedule) -> None:
        """Weight 0 at once, then recorded, the release marked failed, the canary stopped if asked; raises."""
        # At once, before split's locks and reads (split takes it to 0 again, then records it).
        self.node.runtime(runtime_weight_command(self.service, 0))
        zero_at = time.time()
        what = "Canary %s of %s failed step %d (%d %%): %s" % (color, self.service, figures["step"], figures["weight"], reason)
        self.flow.progress("%s; its weight is back to 0" % what)
        failure = {"outcome": "failed", "step": figures["step"], "weight": figures["weight"], "reason": reason,
                   "figures": figures, "time": now()}
        details = dict(outcome="aborted", breach=failure, canary_steps=self.figures, weight_zero_at=zero_at,
                       live_color=live, color=color, changed=True)
        try:
            self.proxy.split(Canary(color, 0))
            self.flow.store.update(self.service, lambda doc: _mark_release(doc, color, failure))
            stopped = self._stop(color) if schedule.on_failure == "stop" else []
        except FlowError as error:
            raise FlowError("%s. Its weight is back to 0 and live color %s serves every request, but recording that "
                            "failed: %s" % (what, live, error.msg), **details)
        stop = "; stopped %s" % ", ".join(stopped) if stopped else ""
        raise FlowError("%s. Its weight is back to 0%s; live color %s serves every request." % (what, stop, live),
                        **dict(details, stopped=stopped))

    def _stop(self, color: str) -> list[str]:
        """canary_on_failure=stop: the canary's instances out of Consul, then stopped."""
        leaving = [i for i in self.flow.backend.list_instances(self.service) if i.color == color and i.running]
        self.flow.fence("stopping the failed canary %s" % color)
        deregister(self.flow, leaving)
        self.flow.backend.stop(leaving, timeout=self.flow.settings.stop_timeout)
        self.flow.store.update(self.service, lambda doc: doc["colors"][color].update(state="stopped"))
        return [i.name for i in leaving]

    def _result(self, changed: bool, msg: str, canary: Canary, live: str, **extra: Any) -> Result:
        return dict({"changed": changed, "msg": msg, "service": self.service, "steps": self.flow.steps,
                     "canary": canary.as_dict(), "live_color": live, "proxy": self.node.name}, **extra)


def _share(service: str, canary: Canary, live: str) -> str:
    return "%d %% of %s's requests go to %s, the rest to live color %s" % (canary.weight, service, canary.color, live)


def _mark_release(document: Document, color: str, canary: dict[str, Any]) -> None:
    """The canary's outcome on ``color``'s release in the history: promoted, failed (the gate) or aborted."""
    release = ((document.get("colors") or {}).get(color) or {}).get("release")
    for record in reversed(document.get("releases") or []):
        if record.get("release") == release:
            record["canary"] = canary
            return
