#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_stop_old
short_description: Stop the releases that are not live, keeping them for a rollback
version_added: "1.0.0"
description:
  - Deregisters and stops (does not remove) every instance that is not part of the live release, so the
    previous release can be started again in seconds.
  - Keeps the newest O(keep_releases) old releases stopped and removes the instances of older ones.
  - For a service that no proxy routes, the newest release becomes the live one first (as the original
    Docker Flow's stop-old did). For a routed service only a proxy switch changes the live color, so
    stop-old never stops what the proxy serves.
  - An interrupted proxy switch (see M(dockerflow.flow.flow_proxy)) is settled first, under the proxy's lock, by
    asking the proxy which configuration its running worker runs; when the proxy cannot be reached, stop-old stops
    nothing and fails saying to run M(dockerflow.flow.flow_proxy). The result's RV(reconciled) says what happened.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_stop_old
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
seealso:
  - module: dockerflow.flow.flow_deploy
"""

EXAMPLES = r"""
- name: Stop the previous color after the switch
  dockerflow.flow.flow_stop_old:
    project_dir: /srv/books-ms

- name: Stop the previous color and remove anything older
  dockerflow.flow.flow_stop_old:
    project_dir: /srv/books-ms
    keep_releases: 1
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
live_color:
  description: The live color after the task.
  returned: success
  type: str
  sample: green
stopped:
  description: Names of the instances that were stopped.
  returned: success
  type: list
  elements: str
removed:
  description: Names of the instances that were removed (releases beyond O(keep_releases)).
  returned: success
  type: list
  elements: str
steps:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
reconciled:
  description: How an interrupted proxy switch of the service was settled before this task, by service - V(finished),
    V(reverted) or V(unchecked) (the proxy could not be reached; see RV(dockerflow.flow.flow_proxy#module:reconciled)).
  returned: when a switch was pending
  type: dict
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec


def stop_old(runner):
    return runner.routed_flow(**runner.step_settings()).stop_old()


def main():
    FlowModule(module_spec("flow_stop_old"), module_name="flow_stop_old").run(stop_old)


if __name__ == "__main__":
    main()
