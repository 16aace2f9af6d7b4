#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_release
short_description: Deploy the next color, switch the proxy to it and stop the old color, in one task
version_added: "1.1.0"
description:
  - A whole blue-green release in one process - what M(dockerflow.flow.flow_deploy),
    M(dockerflow.flow.flow_proxy) (O(dockerflow.flow.flow_proxy#module:state=present)) and
    M(dockerflow.flow.flow_stop_old) do, in that order, with the same options and the same guarantees, paying the
    module's start-up and its Docker and Consul connections once instead of three times.
  - The deploy runs the next color beside the live one; if it fails, nothing changed, as with
    M(dockerflow.flow.flow_deploy).
  - The proxy is then switched to the color the deploy made (or found already running). If the switch fails, the
    new release stays deployed and not live, the live color keeps serving, and the task fails with the proxy step's
    message and says that the release stopped after the deploy; running it again retries the switch.
  - The old color is stopped only once the proxy confirmed that it serves the new one and the state records it live.
  - Running it again with an unchanged configuration changes nothing. In check mode it says what each step would do;
    a step after one that would change something is described, not run.
  - Each step takes the service's lock (the switch also the proxy's) as its own module does; the release does not
    hold a lock from one step to the next.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_release
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  diff_mode:
    details: A list with each step's diff - colors and instances for the deploy and stop-old, the proxy configuration
      for the switch.
seealso:
  - module: dockerflow.flow.flow_deploy
  - module: dockerflow.flow.flow_proxy
  - module: dockerflow.flow.flow_stop_old
"""

EXAMPLES = r"""
- name: Release the app target of books-ms behind /api/v1/books
  dockerflow.flow.flow_release:
    project_dir: /srv/books-ms
    service_path: [/api/v1/books]
    health_path: /api/v1/books
    consul_address: http://10.0.0.2:8500

- name: The same with the options from docker-flow.yml and FLOW_* variables
  dockerflow.flow.flow_release:
    project_dir: /srv/books-ms
  register: release

- name: Where the time went
  ansible.builtin.debug:
    var: release.timings
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
color:
  description: Color of the release the deploy made (or found running), which the proxy routes to.
  returned: success
  type: str
  sample: green
release:
  description: Number of that release.
  returned: success
  type: int
  sample: 4
previous_color:
  description: The live color before the switch.
  returned: when the proxy switched
  type: str
  sample: blue
live_color:
  description: The live color after the task.
  returned: success
  type: str
  sample: green
deployed_color:
  description: Color of the newest release.
  returned: success
  type: str
instances:
  description: The release's instances (empty in check mode when the deploy would run a new release).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "books-ms-app-green-1", "ports": {"8080/tcp": 32768}, "health": "healthy", "status": "running"}]
servers_up:
  description: Servers of the new color the proxy saw up after the switch.
  returned: when the proxy switched
  type: int
routes:
  description: The service's recorded route (paths, path type, domain, color).
  returned: success
  type: dict
stopped:
  description: Names of the instances that were stopped.
  returned: when stop-old ran
  type: list
  elements: str
removed:
  description: Names of the instances that were removed (releases beyond O(keep_releases)).
  returned: when stop-old ran
  type: list
  elements: str
steps:
  description: What was done, in order, by every step.
  returned: always
  type: list
  elements: str
timings:
  description: Seconds each step took, by step (V(deploy), V(proxy), V(stop_old)), for those that ran.
  returned: always
  type: dict
  sample: {"deploy": 1.62, "proxy": 0.81, "stop_old": 0.57}
logs:
  description: Last log lines of the instance that failed to become healthy.
  returned: when the deploy failed
  type: list
  elements: str
failed_instance:
  description: Name of the instance that failed to become healthy.
  returned: when the deploy failed
  type: str
option_sources:
  description: Where options that are not defaults came from (V(parameter), V(env:NAME) or V(file)).
  returned: success
  type: dict
reconciled:
  description: How an interrupted proxy switch of the service was settled before the release, by service (see
    RV(dockerflow.flow.flow_proxy#module:reconciled)).
  returned: when a switch was pending
  type: dict
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import without_hashes
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_step import asked_route, proxy_flow, refuse_a_bad_route


def release(runner):
    flow, route = runner.routed_flow(**runner.step_settings()), asked_route(runner)
    proxy = proxy_flow(runner, lambda: flow)
    return without_hashes(flow.release(lambda color: proxy.run("present", color=color, **route),
                                       lambda: refuse_a_bad_route(proxy, **route)))


def main():
    FlowModule(module_spec("flow_release"), module_name="flow_release").run(release)


if __name__ == "__main__":
    main()
