# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release: deploy the next color, switch the proxy to it, stop the old color, in one process (flow_release).

The three steps are those of flow_deploy, flow_proxy (state=present) and flow_stop_old, run in that order on one
flow context, so a release pays the module start-up, the imports and the Docker and Consul connections once.
Each step keeps its own guarantees, and the release adds its order:
- a deploy that fails changes nothing (as flow_deploy);
- the proxy is switched to the color this deploy made (or found already running) and to no other;
- a switch that fails leaves the new release running beside the live color, which keeps serving; the task fails
  with the proxy step's message and says that the release stopped after the deploy (running it again skips the
  deploy, which changed nothing then, and retries the switch);
- the old color is stopped only after the switch returned, that is once the proxy confirmed that it serves the new
  color (ProxyFlow._confirm) and the state recorded it live;
- in check mode a step whose outcome depends on an earlier step that would change something is described, not run:
  it would read the state as it is, before the change.

Locks: each step takes the service's lock (the switch the proxy's too) and releases it when it ends, as it does in
its own module; the release does not hold one across the three. The locks are not re-entrant and every step takes
its own, so holding one across them would mean rewriting the steps to take a lock they are handed. What another run
can do between two steps is what it could do between three tasks: the switch names the color this deploy made, and
stop-old keeps whatever the state records live and refuses while a switch is unsettled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import Step

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.flow import Flow

Result = dict[str, Any]
# The proxy step of the release: route the service to this color (ProxyFlow.run with state=present).
Switch = Callable[[str], Result]
STEPS = ("deploy", "proxy", "stop_old")


class Release(Step):
    def __init__(self, flow: Flow, switch: Switch, check_route: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``check_route``: refuses (FlowError) the route ``switch`` would refuse for the values asked, before the
        deploy (proxy_step.refuse_a_bad_route), so that a bad input changes nothing."""
        super().__init__(flow)
        self.switch = switch
        self.check_route = check_route
        self.clock = clock
        self.results: dict[str, Result] = {}  # by step, in the order they ran
        self.timings: dict[str, float] = {}  # seconds, by step

    def run(self) -> Result:
        self.check_route()
        deployed = self._timed("deploy", self.flow.deploy)
        if self.flow.check_mode and deployed["changed"]:
            return self._predicted_after_deploy(deployed)
        switched = self._timed("proxy", lambda: self._switch(deployed))
        if self.flow.check_mode and switched["changed"]:
            self.flow.progress("would then stop the releases of %s that are not %s"
                               % (self.settings.service, deployed["color"]))
            return self._combined()
        self._timed("stop_old", lambda: self._stop_old(switched))
        return self._combined()

    def _timed(self, step: str, action: Callable[[], Result]) -> Result:
        began = self.clock()
        try:
            self.results[step] = action()
        finally:
            self.timings[step] = round(self.clock() - began, 3)
        return self.results[step]

    def _switch(self, deployed: Result) -> Result:
        try:
            return self.switch(deployed["color"])
        except FlowError as error:
            raise FlowError(
                "%s The release stopped after the deploy: release %s (%s) of %s runs and is not live; running "
                "flow_release again retries the switch."
                % (error.msg.rstrip(), deployed["release"], deployed["color"], self.settings.service),
                **self._so_far(error)
            )

    def _stop_old(self, switched: Result) -> Result:
        try:
            return self.flow.stop_old()
        except FlowError as error:
            raise FlowError(
                "%s The release stopped after the switch: %s is live, and the old release was not stopped (run "
                "flow_stop_old)." % (error.msg.rstrip(), switched["live_color"]),
                **self._so_far(error)
            )

    def _so_far(self, error: FlowError) -> Result:
        """A failed step's details, with what the release did before it."""
        deployed = self.results["deploy"]
        return dict(error.details, color=deployed["color"], release=deployed["release"], steps=self.flow.steps,
                    timings=self.timings)

    def _predicted_after_deploy(self, deployed: Result) -> Result:
        """Check mode, when the deploy would run a new release: the switch and stop-old that would follow it."""
        service, color = self.settings.service, deployed["color"]
        self.flow.progress("would route %s to %s through the proxy and make it live" % (service, color))
        self.flow.progress("would then stop the releases of %s that are not %s" % (service, color))
        return dict(self._combined(), live_color=color, previous_color=deployed.get("live_color"))

    def _combined(self) -> Result:
        """One result of the steps that ran: each step's keys (a later step's win), the messages in order, the diffs
        as a list, the steps taken and the time of each."""
        result: Result = {}
        for step_result in self.results.values():
            result.update(step_result)
        ran = list(self.results.values())
        result.update(
            changed=any(step_result["changed"] for step_result in ran),
            msg=" ".join(step_result["msg"] for step_result in ran),
            color=self.results["deploy"]["color"],
            release=self.results["deploy"]["release"],
            instances=self.results["deploy"]["instances"],
            steps=self.flow.steps,
            timings=self.timings,
            diff=[diff for step_result in ran for diff in _diffs(step_result)],
        )
        return result


def _diffs(result: Result) -> list[dict]:
    """A step's diffs as a list (the proxy step's is one when certificates changed too)."""
    diff = result.get("diff")
    return diff if isinstance(diff, list) else [diff] if diff else []
