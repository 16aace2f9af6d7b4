#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_rollback
short_description: Start the previous blue-green release again
version_added: "1.0.0"
description:
  - Starts the stopped instances of the other color (the release before the live one, kept by
    M(dockerflow.flow.flow_stop_old)), waits until they are healthy, registers them in Consul and makes that
    release the newest one.
  - Follow it with M(dockerflow.flow.flow_proxy) (switch) and M(dockerflow.flow.flow_stop_old) (stop the
    bad release), as after a deploy; the C(rollback) step of the C(flow) role does all three.
  - If the old instances do not become healthy, they are stopped again and the live release keeps serving.
  - This module does not reach the proxy. While a proxy switch of the service is interrupted (its intent
    C(pending_switch) is in the state, see M(dockerflow.flow.flow_proxy)), both the live and the pending color count
    as served - which release is the previous one is not known, so it refuses, with one line saying to run
    M(dockerflow.flow.flow_proxy) (or O(dockerflow.flow.flow_proxy#module:state=synced)), which settles it.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_rollback
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
seealso:
  - module: dockerflow.flow.flow_proxy
  - module: dockerflow.flow.flow_stop_old
"""

EXAMPLES = r"""
- name: Bring the previous release back
  dockerflow.flow.flow_rollback:
    service_name: books-ms-app

- name: Send users to it
  dockerflow.flow.flow_proxy:
    service_name: books-ms-app

- name: Stop the bad release
  dockerflow.flow.flow_stop_old:
    service_name: books-ms-app
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
color:
  description: Color of the release that runs again.
  returned: success
  type: str
  sample: blue
release:
  description: Number of that release.
  returned: success
  type: int
instances:
  description: Its instances.
  returned: when it changed
  type: list
  elements: dict
steps:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
reconciled:
  description: The service's interrupted proxy switch, by service, with outcome V(unchecked) - this module does not reach
    the proxy, so it does not settle it (see RV(dockerflow.flow.flow_proxy#module:reconciled)).
  returned: when a switch was pending
  type: dict
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec


def rollback(runner):
    return runner.flow(**runner.step_settings()).rollback()


def main():
    FlowModule(module_spec("flow_rollback"), module_name="flow_rollback").run(rollback)


if __name__ == "__main__":
    main()
