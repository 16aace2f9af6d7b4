#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_deploy
short_description: Deploy a Compose target as the next blue-green color
version_added: "1.0.0"
description:
  - Runs the O(target) service of a Compose file as the next color (V(blue) first, then the color that is
    not live) beside the live release, with the same instance count as the live release unless O(scale) says otherwise.
  - Starts the O(side_targets) (and the target's C(depends_on)) when they do not run.
  - Waits until every new instance is healthy, registers each in Consul with its color as a tag, and records
    the release in the service's state in Consul KV.
  - If any new instance fails to become healthy, the new instances are removed, the state is not changed,
    and the task fails with the instance's last log lines. The live color is never stopped or replaced.
  - Deploying again before a proxy switch replaces the previous non-live release, never the live one.
  - Running it again with an unchanged configuration changes nothing (see O(force)).
  - This module does not reach the proxy. While a proxy switch of the service is interrupted (its intent
    C(pending_switch) is in the state, see M(dockerflow.flow.flow_proxy)), both the live and the pending color count
    as served - it refuses to replace either, with one line saying to run M(dockerflow.flow.flow_proxy)
    (or O(dockerflow.flow.flow_proxy#module:state=synced)), which settles it.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_deploy
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
notes:
  - Instances are named C(<project>-<target>-<color>-<n>) and labelled C(dockerflow.service), C(dockerflow.color),
    C(dockerflow.release) and the Compose project and service labels.
  - Each instance gets the environment variables E(DOCKERFLOW_SERVICE), E(DOCKERFLOW_COLOR) and E(DOCKERFLOW_RELEASE).
seealso:
  - module: dockerflow.flow.flow_scale
  - module: dockerflow.flow.flow_stop_old
  - module: dockerflow.flow.flow_info
"""

EXAMPLES = r"""
- name: Deploy the app target as the next color, with its database
  dockerflow.flow.flow_deploy:
    project_dir: /srv/books-ms
    target: app
    side_targets: [db]
    health_path: /api/v1/books
    consul_address: http://10.0.0.2:8500

- name: Deploy with three instances on a remote engine over TLS
  dockerflow.flow.flow_deploy:
    project_dir: /srv/books-ms
    scale: "3"
    docker_host: tcp://10.0.0.5:2376
    cert_path: /etc/docker/client

- name: Options from docker-flow.yml and FLOW_* variables only
  dockerflow.flow.flow_deploy:
    project_dir: /srv/books-ms
  environment:
    FLOW_CONSUL_ADDRESS: http://10.0.0.2:8500
"""

RETURN = r"""
service:
  description: Name of the service in Consul and in the state.
  returned: always
  type: str
  sample: books-ms-app
color:
  description: Color of the release that now runs as the newest one.
  returned: success
  type: str
  sample: green
release:
  description: Number of that release.
  returned: success
  type: int
  sample: 4
live_color:
  description: Color the proxy serves (unchanged by a deploy), or null before the first switch.
  returned: success
  type: str
  sample: blue
deployed_color:
  description: Color of the newest release.
  returned: success
  type: str
  sample: green
instances:
  description: The new release's instances (empty when nothing changed or in check mode).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "books-ms-app-green-1", "ports": {"8080/tcp": 32768}, "health": "healthy", "status": "running"}]
steps:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
logs:
  description: Last log lines of the instance that failed to become healthy.
  returned: failure
  type: list
  elements: str
failed_instance:
  description: Name of the instance that failed to become healthy.
  returned: failure
  type: str
option_sources:
  description: Where options that are not defaults came from (V(parameter), V(env:NAME) or V(file)).
  returned: success
  type: dict
reconciled:
  description: The service's interrupted proxy switch, by service, with outcome V(unchecked) - this module does not reach
    the proxy, so it does not settle it (see RV(dockerflow.flow.flow_proxy#module:reconciled)).
  returned: when a switch was pending
  type: dict
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec


def deploy(runner):
    return runner.flow(**runner.step_settings()).deploy()


def main():
    FlowModule(module_spec("flow_deploy"), module_name="flow_deploy").run(deploy)


if __name__ == "__main__":
    main()
