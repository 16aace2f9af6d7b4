#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_scale
short_description: Scale the live release absolutely or relatively
version_added: "1.0.0"
description:
  - Sets the instance count of the live color (or of O(color)) to O(scale), where V(3) is absolute and
    V(+2) or V(-2) is relative to the instances running now. The count never drops below 1.
  - New instances are copies of a running one (same image, environment, ports and networks), so the
    Compose file is not read. They are waited on until healthy and registered in Consul; if one fails,
    the new ones are removed and the task fails.
  - Scaling down deregisters and removes the newest instances first.
  - For a service a proxy routes, the count of one color cannot go beyond the proxy's server slots
    (C(proxy_max_servers) of M(dockerflow.flow.flow_proxy), recorded in the route), as instances beyond them would get
    no request.
  - Scaling down a routed service asks the proxy (O(proxy_name) on O(proxy_docker_host)) when it stopped sending
    requests to the instances taken away, before they stop; when it cannot be asked, it waits 3 seconds instead.
  - This module does not switch the proxy. While a proxy switch of the service is interrupted (its intent
    C(pending_switch) is in the state, see M(dockerflow.flow.flow_proxy)), both the live and the pending color count
    as served - it refuses to scale either of them down (adding instances is fine), with one line saying to run
    M(dockerflow.flow.flow_proxy) (or O(dockerflow.flow.flow_proxy#module:state=synced)), which settles it.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_scale
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
seealso:
  - module: dockerflow.flow.flow_deploy
"""

EXAMPLES = r"""
- name: Two more instances of the live release
  dockerflow.flow.flow_scale:
    project_dir: /srv/books-ms
    scale: "+2"

- name: Back to one instance
  dockerflow.flow.flow_scale:
    project_dir: /srv/books-ms
    scale: "1"
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
color:
  description: Color that was scaled.
  returned: success
  type: str
  sample: blue
instances_count:
  description: Instance count of that color after the task.
  returned: success
  type: int
  sample: 3
live_color:
  description: The live color.
  returned: success
  type: str
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


def scale(runner):
    flow = runner.flow(**runner.step_settings())
    flow.reach_proxy = runner.proxy_node  # only to ask when it stopped sending requests to instances taken away
    return flow.scale()


def main():
    FlowModule(module_spec("flow_scale"), module_name="flow_scale").run(scale)


if __name__ == "__main__":
    main()
