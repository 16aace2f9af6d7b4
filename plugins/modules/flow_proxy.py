#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_proxy
short_description: Route a service through the HAProxy proxy and switch it to a color without dropping a request
version_added: "1.0.0"
description:
  - Makes sure the proxy runs on the proxy host (a missing proxy is created with every route recorded in Consul,
    a stopped one is started), then routes the service's O(service_path) prefixes and/or O(service_domain) to
    O(color) (the newest release by default).
  - The proxy finds instances through Consul DNS, so scaling, an instance that dies or fails its health check,
    and a restarted proxy follow Consul without another call of this module.
  - Each route reads its live color from a map next to C(haproxy.cfg). A switch that changes only the color swaps
    the running worker's map in one commit of HAProxy's runtime API, with no reload. The map holds a fingerprint of
    each route as the worker runs it, so such a switch reads only its own service's state and the map, and renders
    no configuration, and its cost does not grow with the number of routes. Any other change is a new configuration,
    checked with C(haproxy -c) before it is activated by a hitless master-worker reload; a rejected one is never
    activated and the task fails with HAProxy's message.
  - The service's live color changes only after the proxy serves the new color. A switch records its intent
    (C(pending_switch) in the service's state in Consul) before it activates anything, confirms from the running
    HAProxy worker (the configuration generation it reports, and the target's servers UP), then records the live
    color and clears the intent in one check-and-set write.
  - A run interrupted in between (killed, an AWX job cancel) leaves the intent. Every run first settles it, under
    the proxy's lock - finished if the running worker reports the switch's configuration, reverted otherwise -
    and says so in RV(reconciled) and a warning; O(state=synced) settles every interrupted switch through the proxy.
  - Activation is all or nothing - when no new worker comes up with the new configuration, the previous one goes
    back into C(haproxy.cfg) (and is reloaded if needed), and the task fails. What runs is told by the generation
    the worker reports, not by reading C(haproxy.cfg).
  - After the activation the target's servers must stay UP in the worker for as long as HAProxy's checks need
    to find a dead one (3 seconds - 2 failed checks 1 second apart, plus one interval), or until one passed a check
    that ran after the switch (after a swap of the map, one check interval). If they go DOWN, the previous
    configuration is restored and the task fails - C(... not switching; live color X keeps serving; the previous
    configuration was restored.) A server that answers its checks slowly is not DOWN - each check may take up to 2 seconds,
    as Consul's own check of the instance may.
  - O(state=absent) removes the service's routes and nothing else; O(state=synced) only makes the proxy serve
    every route recorded in Consul (after the proxy host was rebuilt, say).
author:
  - Flow contributors (!UNKNOWN)
extends_documentation_fragment:
  - dockerflow.flow.options
  - dockerflow.flow.options.flow_proxy
  - dockerflow.flow.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  diff_mode:
    details: The diff is the proxy configuration before and after, and when certificates are recorded, their names,
      domains, expiry and fingerprints (never a key) before and after.
notes:
  - The proxy container uses the host network, so it reaches instances at the addresses registered in Consul and
    Consul DNS at O(consul_dns).
  - The HAProxy image must be an official C(haproxy) image of release 2.8 or newer (Debian based, with bash).
seealso:
  - module: dockerflow.flow.flow_deploy
  - module: dockerflow.flow.flow_stop_old
"""

EXAMPLES = r"""
- name: Route /api/v1/books to the newest release of books-ms-app and make it live
  dockerflow.flow.flow_proxy:
    service_name: books-ms-app
    service_path: [/api/v1/books]
    proxy_docker_host: tcp://10.0.0.2:2376
    proxy_docker_cert_path: /etc/docker/proxy

- name: Host-based routing
  dockerflow.flow.flow_proxy:
    service_name: shop-web
    service_domain: shop.example.com

- name: Serve shop.example.com over HTTPS too, with plain HTTP redirected and HSTS for a day
  dockerflow.flow.flow_proxy:
    service_name: shop-web
    service_domain: shop.example.com
    https_redirect: true
    hsts_max_age: 86400
    proxy_certificates:
      - name: shop
        cert_path: /etc/ssl/shop/fullchain.pem
        key_path: /etc/ssl/shop/privkey.pem

- name: Roll back to blue
  dockerflow.flow.flow_proxy:
    service_name: books-ms-app
    color: blue

- name: Stop routing a retired service
  dockerflow.flow.flow_proxy:
    service_name: old-app
    state: absent
"""

RETURN = r"""
service:
  description: Name of the service.
  returned: always
  type: str
color:
  description: Color the proxy routes the service to.
  returned: when state is present
  type: str
  sample: green
live_color:
  description: The live color after the task.
  returned: when state is present
  type: str
previous_color:
  description: The live color before the task.
  returned: when the proxy switched
  type: str
routes:
  description: The service's recorded route (paths, path type, domain, color).
  returned: success
  type: dict
servers_up:
  description: Servers of the target color the proxy saw up after the switch.
  returned: when the proxy switched
  type: int
steps:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
certificates:
  description:
    - The certificates recorded for the proxy (with those this task recorded), the default one first - never a key.
    - C(fingerprint) is a digest of the certificate chain and key, which changes with a new content.
  returned: when a certificate is recorded
  type: list
  elements: dict
  sample: [{"name": "shop", "source": "file", "domains": ["shop.example.com"], "not_after": "2027-03-01T12:00:00Z",
            "fingerprint": "9c1d0e7a55b2f3e1"}]
proxy_replaced:
  description:
    - What differed in the proxy container this task replaced (or, in check mode, would replace) without a gap,
      because O(proxy_image), O(proxy_admin_address) or O(proxy_master_port) differ from what it was created with.
  returned: when the proxy container was replaced
  type: list
  elements: str
  sample: ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
haproxy_output:
  description: What C(haproxy -c) said about a rejected configuration.
  returned: failure
  type: list
  elements: str
reconciled:
  description:
    - How an interrupted proxy switch (a run killed between activating a configuration and recording it, whose
      intent C(pending_switch) stayed in the state) was settled before this task acted, by service.
    - V(finished) (the proxy's running worker serves it, so it is now recorded as live), V(reverted) (it does not,
      so the intent was dropped) or V(unchecked) (this task could not ask the proxy; both colors count as served).
  returned: when a switch was pending
  type: dict
  sample: {"books-ms-app": {"outcome": "finished", "color": "green", "previous_color": "blue", "live_color": "green",
           "generation": "3f2a9c0b1d7e", "proxy": "dockerflow-proxy", "since": "2024-05-01T10:00:00Z",
           "msg": "finished the interrupted switch of books-ms-app to green ..."}}
"""

from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.options import module_spec
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import without_hashes
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_step import asked_route, proxy_flow


def proxy(runner):
    step = proxy_flow(runner, lambda: runner.flow(engine=False))
    result = step.run(runner.params["state"], color=runner.params["color"], **asked_route(runner))
    return without_hashes(result)


def main():
    FlowModule(module_spec("flow_proxy"), module_name="flow_proxy").run(proxy)


if __name__ == "__main__":
    main()
