# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow: what a module gets (module_base's ``runner.flow()``): the shared context, and one method per step."""

from __future__ import annotations

from collections.abc import Callable

from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.deploy import Deploy
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.info import info
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.release import Release, Switch
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.rollback import Rollback
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.scale import Scale
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.stop_old import StopOld


class Flow(FlowContext):
    """The steps of one service (each in its own file of this package); the proxy step is proxy_flow.ProxyFlow."""

    def deploy(self) -> dict:
        return Deploy(self).run()

    def scale(self) -> dict:
        return Scale(self).run()

    def stop_old(self) -> dict:
        return StopOld(self).run()

    def release(self, switch: Switch, check_route: Callable[[], None]) -> dict:
        """deploy, then ``switch`` (the proxy step) to its color, then stop_old (steps.release)."""
        return Release(self, switch, check_route).run()

    def rollback(self) -> dict:
        return Rollback(self).run()

    def info(self) -> dict:
        return info(self)
