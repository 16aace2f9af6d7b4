#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: acme_lock
short_description: The Consul lock that lets one ACME issuer at a time work for all proxy nodes
version_added: "1.0.0"
description:
  - O(state=acquired) takes the lock C(dockerflow/locks/_acme) through a Consul session with a TTL, waiting up to
    O(lock_timeout) seconds for another issuer, and keeps it after the task. It returns the session, which nothing
    renews, so a play that dies leaves the lock for at most twice O(lock_ttl) (Consul's TTL rule) plus Consul's 5 s
    lock-delay.
  - O(state=released) releases the lock of O(session) and destroys the session. Role C(dockerflow.flow.acme) does
    it in an C(always) section, so a failed issuance releases it too.
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.consul_connection
  - ansible.builtin.action_common_attributes
options:
  state:
    description: V(acquired) takes the lock, V(released) releases the lock of O(session).
    type: str
    choices: [acquired, released]
    default: acquired
  session:
    description: The session that holds the lock (RV(session) of the O(state=acquired) task); with O(state=released).
    type: str
  lock_timeout:
    description: Seconds to wait for another issuer's lock before failing with the name of its holder.
    type: int
    default: 300
  lock_ttl:
    description: TTL of the lock's session, in seconds (10 to 86400); longer than an issuance takes.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Take the issuer's lock
  dockerflow.flow.acme_lock:
    state: acquired
  register: acme_lock

- name: Release it
  dockerflow.flow.acme_lock:
    state: released
    session: "{{ acme_lock.session }}"
"""

RETURN = r"""
session:
  description: The Consul session that holds the lock (null in check mode, or when O(session) was not given).
  returned: success
  type: str
waited:
  description: Seconds spent waiting for another issuer's lock.
  returned: when acquired
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockerflow.flow.plugins.module_utils.acme_modules import CONSUL_SPEC, acquire, release
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def main():
    module = AnsibleModule(
        argument_spec=dict(CONSUL_SPEC, state=dict(type="str", choices=["acquired", "released"], default="acquired"),
                           session=dict(type="str"), lock_timeout=dict(type="int", default=300),
                           lock_ttl=dict(type="int", default=600)),
        supports_check_mode=True,
    )
    try:
        if not 10 <= module.params["lock_ttl"] <= 86400:
            raise FlowError("lock_ttl=%r is not valid: use 10 to 86400 seconds." % module.params["lock_ttl"])
        action = acquire if module.params["state"] == "acquired" else release
        module.exit_json(**action(module.params, module.check_mode))
    except FlowError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
