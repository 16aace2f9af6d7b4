#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_info
short_description: Live and deployed color, instances and release history of a service
version_added: "1.0.0"
description:
  - Reads a service's state from Consul and its instances from the Docker engine, with each instance's
    host ports, Docker health and Consul health. Changes nothing.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.attributes.info_module
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
"""

EXAMPLES = r"""
- name: Read the state of books-ms-app
  dockerflow.flow.flow_info:
    service_name: books-ms-app
  register: books

- name: Show the live color
  ansible.builtin.debug:
    msg: "{{ books.live_color }} serves, release {{ books.releases[-1].release }}"
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
exists:
  description: Whether the service has state or instances.
  returned: always
  type: bool
live_color:
  description: Color users are served, or null.
  returned: always
  type: str
deployed_color:
  description: Color of the newest release, or null.
  returned: always
  type: str
colors:
  description: Per color, the recorded release, instance count and the instances (name, status, health, ports, consul health).
  returned: always
  type: dict
  sample:
    blue:
      release: 1
      instances: 2
      members: [{"name": "p-app-blue-1", "ports": {"8080/tcp": 32768}, "consul": "passing"}]
releases:
  description: Release history, oldest first (image, color, time, deployed_by).
  returned: always
  type: list
  elements: dict
routes:
  description: Proxy routes recorded for the service.
  returned: always
  type: dict
state:
  description: The raw state document from Consul KV.
  returned: always
  type: dict
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec


def info(runner):
    return runner.flow().info()


def main():
    FlowModule(module_spec("flow_info"), module_name="flow_info").run(info)


if __name__ == "__main__":
    main()
