#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: acme_challenge
short_description: Publish ACME HTTP-01 challenges in Consul, where every proxy node answers them
version_added: "1.0.0"
description:
  - O(state=present) records the key authorization of each http-01 challenge of O(challenge_data) at
    C(dockerflow/proxy/acme-challenges/<token>) in Consul's KV store; every proxy node answers
    C(GET /.well-known/acme-challenge/<token>) from there at once (option C(proxy_acme_consul) of
    M(dockerflow.flow.flow_proxy)), so the ACME server may ask any of them. O(state=absent) deletes them.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.consul_connection
  - ansible.builtin.action_common_attributes
options:
  state:
    description: V(present) publishes the challenges, V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  challenge_data:
    description: RV(community.crypto.acme_certificate#module:challenge_data) of the order's first step.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Publish the order's challenges for every proxy node
  dockerflow.flow.acme_challenge:
    challenge_data: "{{ order.challenge_data }}"
"""

RETURN = r"""
tokens:
  description: The tokens published (or removed) by this call; those already as wanted are not listed.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockerflow.flow.plugins.module_utils.acme_modules import CONSUL_SPEC, challenges
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def main():
    module = AnsibleModule(
        argument_spec=dict(CONSUL_SPEC, state=dict(type="str", choices=["present", "absent"], default="present"),
                           challenge_data=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**challenges(module.params, module.check_mode))
    except FlowError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
