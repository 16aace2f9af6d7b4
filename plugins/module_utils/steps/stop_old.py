# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stop-old step: stop the releases that no longer serve, keep the newest ``keep_releases`` of them
stopped (a rollback starts them again), and remove the older ones.

The live color's release is never touched. Old instances leave Consul first, and for a routed service
the proxy drains them, before they stop. A service nothing routes has no proxy to say what is live:
there stop-old promotes the newest release, as the original stop-old did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import backend_name
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import refuse_a_serving_canary
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import Step
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.instances import (
    current_release_instances,
    deregister,
    quiesce,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import refuse_while_unsettled

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance


@dataclass
class Old:
    """What stop-old does to the instances outside the live color's release."""

    live: str
    promoted: bool  # live became the newest release (nothing routes the service)
    old: list[Instance]
    to_stop: list[Instance]  # running, in the releases kept
    to_remove: list[Instance]  # in the releases beyond keep_releases

    @property
    def leaving(self) -> list[Instance]:
        return self.to_stop + self.to_remove


class StopOld(Step):
    def run(self) -> dict:
        service = self.settings.service
        if self.settings.keep_releases is None or self.settings.keep_releases < 0:
            raise FlowError("keep_releases=%r is not valid: use 0 or more." % self.settings.keep_releases)
        with self.flow.lock("stop-old"):
            state = self.flow.settled_state()
            refuse_while_unsettled(state, "stop-old cannot tell which color to keep")
            instances = self.flow.backend.list_instances(service)
            live, promoted = self._live(state, instances)
            old = self._old(state, instances, live, promoted)
            refuse_a_serving_canary(state, {i.color for i in old.leaving}, "stop-old would stop")
            if not (old.leaving or old.promoted):
                return self.flow.result(False, "No old release of %s is running." % service, state, state, instances,
                                        instances, live_color=old.live, stopped=[], removed=[])
            if self.flow.check_mode:
                return self._predicted(state, instances, old)
            self._take_out_of_service(state, old)
            self._stop_and_remove(old)
            before, after = self.flow.store.update(service, lambda document: _record(document, old))
            self._report(old)
            return self.flow.result(
                True, "Stopped %d and removed %d old instance(s) of %s; live color %s."
                % (len(old.to_stop), len(old.to_remove), service, old.live),
                before, after, instances, self.flow.backend.list_instances(service),
                stopped=[i.name for i in old.to_stop], removed=[i.name for i in old.to_remove],
            )

    def _live(self, state: dict, instances: list[Instance]) -> tuple[str, bool]:
        """The color to keep, and whether it is newly promoted; refuses when the proxy routes another."""
        service = self.settings.service
        live, deployed = state.get("live_color"), state.get("deployed_color")
        promoted = False
        if deployed and deployed != live and not state.get("routes"):
            # Nothing routes this service, so "live" can only mean "what the operator kept":
            # stop-old promotes the newest release, as the original stop-old did.
            newest = [i for i in current_release_instances(state, instances, deployed) if i.running]
            if not newest:
                raise FlowError(
                    "Release %s (%s) of %s has no running instance; refusing to stop the others."
                    % ((state["colors"].get(deployed) or {}).get("release"), deployed, service)
                )
            live, promoted = deployed, True
        if not live:
            raise FlowError("Service %s has no release; nothing to stop." % service)
        routed = (state.get("routes") or {}).get("color")
        if routed and routed != live:
            # Left by an older version (plain deploys took live_color before a switch): never stop what is routed.
            raise FlowError(
                "The proxy routes %s to %s, but its state calls %s live; nothing was stopped. Switch with "
                "flow_proxy first (color=%s to keep serving %s)." % (service, routed, live, routed, routed)
            )
        return live, promoted

    def _old(self, state: dict, instances: list[Instance], live: str, promoted: bool) -> Old:
        """Instances outside the live release: the newest keep_releases releases stop, older ones go."""
        keep = {i.id for i in current_release_instances(state, instances, live)}
        old = [i for i in instances if i.id not in keep]
        releases = sorted({i.release for i in old}, reverse=True)
        kept_releases = set(releases[: self.settings.keep_releases])
        return Old(
            live=live, promoted=promoted, old=old,
            to_stop=[i for i in old if i.running and i.release in kept_releases],
            to_remove=[i for i in old if i.release not in kept_releases],
        )

    def _predicted(self, state: dict, instances: list[Instance], old: Old) -> dict:
        """Check mode: what stop-old would do, changing nothing."""
        return self.flow.result(
            True, "Would stop %d and remove %d old instance(s) of %s."
            % (len(old.to_stop), len(old.to_remove), self.settings.service),
            state, dict(state, live_color=old.live), instances, [i for i in instances if i not in old.to_remove],
            stopped=[i.name for i in old.to_stop], removed=[i.name for i in old.to_remove],
        )

    def _take_out_of_service(self, state: dict, old: Old) -> None:
        """Out of Consul, and for a routed service out of the proxy, before anything stops."""
        self.flow.fence("deregistering the old instances")
        endpoints = deregister(self.flow, old.leaving)
        serving = [i for i in old.leaving if i.color == old.live]
        if serving:
            quiesce(self.flow, state, serving, endpoints)  # plain releases share the live backend
        if state.get("routes") and self.flow.wait_for_drain and old.leaving:
            waited = self.flow.wait_for_drain(sorted({backend_name(self.settings.service, i.color)
                                                      for i in old.leaving if i.color != old.live}))
            self.flow.progress("the proxy drained requests to the old release in %.1fs" % waited)
        self.flow.checkpoint("stop-old:deregistered")

    def _stop_and_remove(self, old: Old) -> None:
        if old.to_stop:
            self.flow.fence("stopping %s" % ", ".join(i.name for i in old.to_stop))
        self.flow.backend.stop(old.to_stop, timeout=self.settings.stop_timeout)
        if old.to_remove:
            self.flow.fence("removing %s" % ", ".join(i.name for i in old.to_remove))
        self.flow.backend.remove(old.to_remove)

    def _report(self, old: Old) -> None:
        if old.promoted:
            self.flow.progress("%s is now the live color of %s" % (old.live, self.settings.service))
        if old.to_stop:
            self.flow.progress("stopped %s" % ", ".join(i.name for i in old.to_stop))
        if old.to_remove:
            self.flow.progress("removed %s" % ", ".join(i.name for i in old.to_remove))


def _record(document: dict, old: Old) -> None:
    """The live color, and the old colors marked stopped."""
    document["live_color"] = old.live
    for color in sorted({i.color for i in old.old if i.color != old.live}):
        if color in document["colors"]:
            document["colors"][color]["state"] = "stopped"
