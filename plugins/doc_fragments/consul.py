# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  consul_address:
    description:
      - URL of the Consul HTTP API that holds the state and the service registrations.
      - Falls back to E(FLOW_CONSUL_ADDRESS), E(CONSUL_HTTP_ADDR), C(consul_address) in C(docker-flow.yml), then V(http://127.0.0.1:8500).
    type: str
  consul_token:
    description:
      - ACL token for Consul. Needs write access to the C(dockerflow/) KV prefix, sessions, and service registration.
      - Falls back to E(FLOW_CONSUL_TOKEN), then E(CONSUL_HTTP_TOKEN).
    type: str
  consul_ca_cert:
    description: CA bundle to verify an HTTPS Consul with. Falls back to E(FLOW_CONSUL_CA_CERT), then E(CONSUL_CACERT).
    type: path
  consul_client_cert:
    description: Client certificate for Consul's HTTPS API (needs O(consul_client_key)).
    type: path
  consul_client_key:
    description: Key of O(consul_client_cert).
    type: path
  consul_validate_certs:
    description: Verify Consul's HTTPS certificate. Defaults to true.
    type: bool
  lock_timeout:
    description:
      - Seconds to wait for another flow on the same service to finish before failing with the name of the lock holder.
      - Defaults to 300.
    type: int
  lock_ttl:
    description:
      - Seconds of the TTL of the Consul session that holds the service's lock, from 10 to 86400.
      - A run that is killed, or loses Consul, cannot release its lock; the lock expires within twice this time
        plus Consul's 5 s lock-delay (Consul's TTL rule), and the next run reports whose lock it took over.
      - Falls back to E(FLOW_LOCK_TTL), C(lock_ttl) in C(docker-flow.yml), then V(30).
    type: int
requirements:
  - py-consul >= 1.5
"""
