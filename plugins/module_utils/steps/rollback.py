# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback step: start the previous color's kept release again and make it the newest one.

The proxy switch and stopping the current color are the next steps (flow_proxy, flow_stop_old),
exactly as after a deploy. A release that does not come up healthy is stopped again; the current
color keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import LockLost, who_am_i
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import record_release
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import Step, now
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.instances import (
    await_healthy,
    clone_probe,
    current_release_instances,
    deregister,
    register,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import refuse_while_unsettled

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance


@dataclass
class Previous:
    """The kept release to roll back to, beside the color that serves now."""

    state: dict
    instances: list[Instance]
    current: str  # the color that serves now
    target: str  # the other color, whose release comes back
    members: list[Instance]  # the target's recorded release

    @property
    def recorded(self) -> dict:
        return self.state["colors"].get(self.target) or {}

    @property
    def release(self) -> int | None:
        return self.recorded.get("release")


class Rollback(Step):
    def run(self) -> dict:
        service = self.settings.service
        with self.flow.lock("rollback"):
            previous = self._previous()
            release, target, state = previous.release, previous.target, previous.state
            if state.get("deployed_color") == target and all(i.running for i in previous.members):
                return self._result(False, "Release %s (%s) of %s already runs." % (release, target, service),
                                    previous, state, previous.instances)
            if self.flow.check_mode:
                return self._result(True, "Would start release %s (%s) of %s again." % (release, target, service),
                                    previous, dict(state, deployed_color=target), previous.instances)
            ready = self._start(previous)
            before, after = self._record(previous)
            return self._result(
                True, "Release %s (%s) of %s runs again beside %s; switch the proxy to it, then stop the old color."
                % (release, target, service, previous.current),
                previous, after, self.flow.backend.list_instances(service), before=before,
                instances=[i.as_dict() for i in ready],
            )

    def _previous(self) -> Previous:
        service = self.settings.service
        state = self.flow.settled_state()
        refuse_while_unsettled(state, "a rollback cannot tell which release is the previous one")
        instances = self.flow.backend.list_instances(service)
        current = colors.serving_color(state.get("live_color"), state.get("deployed_color"))
        if current not in colors.BLUE_GREEN_COLORS:
            raise FlowError("Service %s has no blue-green release to roll back from." % service)
        target = colors.other_color(current)
        members = current_release_instances(state, instances, target) if state["colors"].get(target) else []
        if not members:
            raise FlowError(
                "Service %s has no kept %s release to roll back to (keep_releases removed it, or it never ran)."
                % (service, target)
            )
        return Previous(state=state, instances=instances, current=current, target=target, members=members)

    def _start(self, previous: Previous) -> list[Instance]:
        """Start its stopped instances; returns them all healthy and registered. If not, they are stopped again."""
        recorded, target = previous.recorded, previous.target
        stopped = [i for i in previous.members if not i.running]
        if stopped:
            self.flow.fence("starting release %s (%s) again" % (previous.release, target))
        started = self.flow.backend.start(stopped)
        self.flow.progress("started %s" % ", ".join(i.name for i in started) if started else "the %s release still runs" % target)
        try:
            still_running = [self.flow.backend.refresh(i) for i in previous.members if i.running]
            ready = await_healthy(self.flow, still_running + started,
                                  clone_probe(self.flow, previous.members[0], recorded.get("port"), recorded.get("health_path")))
            register(self.flow, ready, recorded.get("port"), recorded.get("health_path"))
        except FlowError as error:
            deregister(self.flow, started)
            self.flow.backend.stop(started, timeout=self.settings.stop_timeout)
            raise FlowError(
                "Rollback of %s to %s failed: %s It was stopped again; %s keeps serving."
                % (self.settings.service, target, error.msg, previous.current), **error.details
            )
        return ready

    def _record(self, previous: Previous) -> tuple[dict, dict]:
        """It becomes the deployed color, recorded as a release that rolled back from the current one."""
        target, count = previous.target, len(previous.members)
        record = {
            "release": previous.release,
            "color": target,
            "image": previous.recorded.get("image"),
            "instances": count,
            "time": now(),
            "deployed_by": self.settings.deployed_by or who_am_i(),
            "rollback_from": previous.current,
        }

        def mutate(document: dict) -> None:
            document["deployed_color"] = target
            document["colors"][target] = dict(document["colors"].get(target) or {}, state="running", instances=count)
            record_release(document, record)

        try:
            return self.flow.store.update(self.settings.service, mutate)
        except LockLost as error:
            # Stopping them again could take instances from the run that holds the lock now.
            raise LockLost("Rollback of %s to %s left the instances it started running: %s"
                           % (self.settings.service, target, error.msg))

    def _result(self, changed: bool, msg: str, previous: Previous, after: dict, instances_after: list[Instance],
                before: dict | None = None, **extra: object) -> dict:
        return self.flow.result(changed, msg, previous.state if before is None else before, after, previous.instances,
                                instances_after, color=previous.target, release=previous.release, **extra)
