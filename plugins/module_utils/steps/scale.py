# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale step: add copies of a color's recorded release, or take some of its instances away.

New copies are clones of a running instance, gated by the probe the release recorded, and registered
before the count is recorded; a failure removes them. Instances taken away leave Consul (and, for a
routed service, the proxy) before they stop. Scaling down a color the proxy may serve is refused
while a proxy switch is unsettled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.scale import ScaleRequest, parse_scale
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import refuse_beyond_slots
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import Step
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.instances import (
    await_deregistrations,
    await_healthy,
    clone_probe,
    current_release_instances,
    deregister,
    discard,
    free_numbers,
    quiesce,
    register,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import refuse_if_possibly_served

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import Instance


@dataclass
class Count:
    """One color's instances now and how many it should run."""

    state: dict
    instances: list[Instance]
    color: str
    members: list[Instance]  # the color's recorded release
    running: list[Instance]
    wanted: int

    @property
    def current(self) -> int:
        return len(self.running)


class Scale(Step):
    def run(self) -> dict:
        request = self._request()
        with self.flow.lock("scale"):
            count = self._count(request)
            service, color, current, wanted = self.settings.service, count.color, count.current, count.wanted
            if wanted == current:
                return self._result(False, "%s (%s) already runs %d instance(s)." % (service, color, current),
                                    count, count.state, count.instances)
            if wanted < current:
                refuse_if_possibly_served(count.state, [color], "scaling down would stop instances of")
            if self.flow.check_mode:
                return self._result(True, "Would scale %s (%s) from %d to %d instance(s)." % (service, color, current, wanted),
                                    count, _with_count(count.state, color, wanted), count.instances)
            before, after = self._add(count) if wanted > current else self._remove(count)
            return self._result(True, "Scaled %s (%s) from %d to %d instance(s)." % (service, color, current, wanted),
                                count, after, self.flow.backend.list_instances(service), before=before)

    def _request(self) -> ScaleRequest:
        settings = self.settings
        request = parse_scale(settings.scale, "scale")
        if request is None:
            raise FlowError("scale is required: %s." % "N, +N or -N")
        if settings.color is not None and settings.color not in colors.ALL_COLORS:
            raise FlowError("color=%r is not valid: use one of %s." % (settings.color, ", ".join(colors.ALL_COLORS)))
        return request

    def _count(self, request: ScaleRequest) -> Count:
        """The color to scale (color, else the one that serves), its instances, and the count asked for."""
        settings = self.settings
        state = self.flow.settled_state()
        instances = self.flow.backend.list_instances(settings.service)
        color = settings.color or colors.serving_color(state.get("live_color"), state.get("deployed_color"))
        if not color:
            raise FlowError("Service %s has no release to scale; deploy it first." % settings.service)
        members = current_release_instances(state, instances, color)
        if not members:
            raise FlowError("Service %s has no %s instances to scale." % (settings.service, color))
        running = [i for i in members if i.running]
        wanted = request.apply(len(running), maximum=settings.max_instances)
        beyond_slots = refuse_beyond_slots(state, settings.service, color, wanted, len(running), "scale=%s" % request)
        if beyond_slots:
            self.flow.warnings.append(beyond_slots)
        return Count(state=state, instances=instances, color=color, members=members, running=running, wanted=wanted)

    def _add(self, count: Count) -> tuple[dict, dict]:
        """Clone a running instance of the release; healthy and registered before the new count is recorded."""
        settings, color = self.settings, count.color
        recorded = count.state["colors"].get(color) or {}
        port_key, health_path = recorded.get("port"), recorded.get("health_path")
        template = count.running[0] if count.running else count.members[0]
        numbers = free_numbers([i for i in count.instances if i.color == color], count.wanted - count.current)
        self.flow.fence("adding %d %s instance(s)" % (len(numbers), color))
        self.flow.progress("adding %d %s instance(s)" % (len(numbers), color))
        new = self.flow.backend.clone_instances(template, numbers)
        try:
            new = await_healthy(self.flow, new, clone_probe(self.flow, template, port_key, health_path))
            register(self.flow, new, port_key, health_path)
            return self._record(count)
        except FlowError as error:
            discard(self.flow, new)
            raise FlowError(
                "Scaling %s (%s) to %d failed: %s The new instances were removed; %d keep serving."
                % (settings.service, color, count.wanted, error.msg, count.current),
                **error.details
            )

    def _remove(self, count: Count) -> tuple[dict, dict]:
        """The newest instances go: out of Consul (and the proxy) first, then stopped and removed."""
        victims = sorted(count.running, key=lambda i: (i.created, i.number), reverse=True)[: count.current - count.wanted]
        self.flow.fence("removing %d %s instance(s)" % (len(victims), count.color))
        endpoints = deregister(self.flow, victims)
        quiesce(self.flow, count.state, victims, endpoints)
        gone = self.flow.backend.retire(victims, timeout=self.settings.stop_timeout)
        await_deregistrations(self.flow, gone)
        self.flow.progress("removed %s" % ", ".join(i.name for i in gone))
        return self._record(count)

    def _record(self, count: Count) -> tuple[dict, dict]:
        return self.flow.store.update(self.settings.service, lambda document: _set_count(document, count.color, count.wanted))

    def _result(self, changed: bool, msg: str, count: Count, after: dict, instances_after: list[Instance],
                before: dict | None = None) -> dict:
        return self.flow.result(changed, msg, count.state if before is None else before, after,
                                count.instances, instances_after, color=count.color, instances_count=count.wanted)


def _set_count(document: dict, color: str, count: int) -> None:
    document["colors"].setdefault(color, {})["instances"] = count


def _with_count(state: dict, color: str, count: int) -> dict:
    predicted = dict(state, colors=dict(state.get("colors", {})))
    predicted["colors"][color] = dict(predicted["colors"].get(color) or {}, instances=count)
    return predicted
