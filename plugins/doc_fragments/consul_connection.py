# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The Consul connection of the ACME helper modules (acme_modules.CONSUL_SPEC): the flow modules' options of
    # that name, without their FLOW_* and docker-flow.yml fallbacks; and what those modules share besides.
    DOCUMENTATION = r"""
requirements:
  - py-consul >= 1.5
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  consul_address:
    description: URL of the Consul HTTP API that holds the state (every proxy node reads the challenges from it).
    type: str
    default: http://127.0.0.1:8500
  consul_token:
    description: ACL token for Consul; it needs write access to the C(dockerflow/) KV prefix and sessions.
    type: str
  consul_ca_cert:
    description: CA bundle to verify an HTTPS Consul with.
    type: path
  consul_client_cert:
    description: Client certificate for Consul's HTTPS API (needs O(consul_client_key)).
    type: path
  consul_client_key:
    description: Key of O(consul_client_cert).
    type: path
  consul_validate_certs:
    description: Verify Consul's HTTPS certificate.
    type: bool
    default: true
"""
