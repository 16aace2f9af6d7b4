#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_canary
short_description: Send a share of a service's requests to its new release, and promote it while the proxy's figures stay good
version_added: "1.1.0"
description:
  - Makes the newest release of a routed service (deployed by M(dockerflow.flow.flow_deploy), not yet live) a
    canary, the proxy sending it a share of the service's requests, and the live color the rest.
  - The share is set through HAProxy's runtime API, with no reload (the first share of a route adds the rule that
    reads it, by one hitless reload). It is recorded in the service's route in Consul, so a reloaded, restarted or
    synced proxy comes back with the same split.
  - Without O(canary_weight), a gated promotion. The weight steps through O(canary_steps), each step lasting
    O(canary_dwell). During a step, the proxy's own counters of the canary color's backend are read every half
    second. Its 5xx ratio and response time are compared with O(canary_max_error_ratio) and
    O(canary_max_response_time), or with the live color's over the same step (O(canary_against_live)).
  - At the first breach the weight goes back to 0 at once. The release is marked failed in the history (the step,
    the reason, the figures), the canary is kept or stopped (O(canary_on_failure)), and the task fails. The live
    color serves every request, as before the canary.
  - Once every step passed, the module switches the service to the canary, with every guarantee of
    M(dockerflow.flow.flow_proxy)'s switch, and the canary ends.
  - With O(canary_weight), the module sets that share and returns. V(0) ends the canary; the release is marked
    aborted in the history.
  - A run that is killed mid-canary leaves the weight recorded, and the proxy keeps it. The next run of this module
    starts its schedule over from the first step. A M(dockerflow.flow.flow_proxy) switch routes every request to
    one color and ends the canary. While a canary takes requests, M(dockerflow.flow.flow_deploy) and
    M(dockerflow.flow.flow_stop_old) refuse to replace or stop it.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_canary
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  diff_mode:
    support: none
notes:
  - The canary's requests are drawn at random, one request at a time, so one client may see both releases.
seealso:
  - module: dockerflow.flow.flow_deploy
  - module: dockerflow.flow.flow_proxy
"""

EXAMPLES = r"""
- name: Deploy the new release beside the live one
  dockerflow.flow.flow_deploy:
    project_dir: /srv/books-ms
    health_path: /health

- name: 5, 25, 50 then 100 % of the requests, a minute each; promote unless the 5xx ratio passes 1 %
  dockerflow.flow.flow_canary:
    project_dir: /srv/books-ms
    canary_steps: [5, 25, 50, 100]
    canary_dwell: 1m
    canary_max_error_ratio: 0.01
    canary_max_response_time: 300ms

- name: Hold 10 % on the canary while someone looks at it
  dockerflow.flow.flow_canary:
    project_dir: /srv/books-ms
    canary_weight: 10

- name: End the canary
  dockerflow.flow.flow_canary:
    project_dir: /srv/books-ms
    canary_weight: 0
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
outcome:
  description: V(promoted) (every step passed; the canary is live), V(aborted) (the gate tripped, or O(canary_weight=0)),
    or V(weighted) (O(canary_weight) was set).
  returned: always
  type: str
canary:
  description: The canary's color and its weight when the task ended.
  returned: when no promotion happened
  type: dict
  sample: {"color": "green", "weight": 10}
live_color:
  description: The color the proxy routes the rest of the requests to (after a promotion, the canary's).
  returned: always
  type: str
canary_steps:
  description: One entry a step of the gated promotion, with what the proxy counted for the canary over it
    (C(requests), C(errors_5xx), C(error_ratio), C(response_time_ms)), the same for the live color (C(live)),
    C(seconds), and C(verdict) (V(pass) or V(breach)).
  returned: when O(canary_weight) is not set
  type: list
  elements: dict
breach:
  description: Why the canary failed (C(reason)), at which C(step) and C(weight), and the step's C(figures).
  returned: when the gate tripped
  type: dict
weight_zero_at:
  description: When the proxy took the weight 0 after the breach (seconds since the epoch, on the controller).
  returned: when the gate tripped
  type: float
stopped:
  description: The canary's instances stopped after it failed (O(canary_on_failure=stop)).
  returned: when the gate tripped
  type: list
  elements: str
steps:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.canary_flow import CanaryFlow
from ansible_collections.dockerflow.flow.plugins.module_utils.canary_gate import Schedule
from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import without_hashes


def canary(runner):
    params = runner.params
    schedule = Schedule.from_params(params)
    flow = runner.flow(engine=schedule.on_failure == "stop", stop_timeout=params["stop_timeout"])
    canary_flow = CanaryFlow(flow, runner.proxy_node(), switch_timeout=params["switch_timeout"])
    return without_hashes(canary_flow.run(params["canary_weight"], schedule, color=params["color"]))


def main():
    FlowModule(module_spec("flow_canary"), module_name="flow_canary").run(canary)


if __name__ == "__main__":
    main()
