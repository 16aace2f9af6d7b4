# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  proxy_docker_host:
    description:
      - Docker engine of the proxy host. Falls back to E(FLOW_PROXY_DOCKER_HOST), C(proxy_docker_host) in
        C(docker-flow.yml), then O(docker_host).
    type: str
  proxy_docker_cert_path:
    description:
      - TLS files (C(ca.pem), C(cert.pem), C(key.pem)) for O(proxy_docker_host).
        Falls back to E(FLOW_PROXY_DOCKER_CERT_PATH).
    type: path
  proxy_tls_verify:
    description: Verify the proxy engine's certificate. Defaults to O(tls_verify).
    type: bool
  proxy_name:
    description: Name of the proxy container. Defaults to V(dockerflow-proxy).
    type: str
  proxy_image:
    description:
      - HAProxy image the proxy is created from when it does not exist. Defaults to V(haproxy:3.0) (an LTS release).
      - A running proxy keeps its image. When this option is set and differs from the running container's image
        (or O(proxy_admin_address) / O(proxy_master_port) differ from its master CLI's),
        M(dockerflow.flow.flow_proxy) warns and changes nothing. Replacing the container drops its connections,
        so do it in a quiet moment with M(dockerflow.flow.flow_proxy)
        O(dockerflow.flow.flow_proxy#module:state=absent), then O(dockerflow.flow.flow_proxy#module:state=synced).
    type: str
  proxy_listen_address:
    description: Address the proxy's HTTP frontend binds on the proxy host. Defaults to V(*) (all).
    type: str
  proxy_http_port:
    description: Port of the proxy's HTTP frontend. Defaults to V(80).
    type: int
  proxy_stats_address:
    description:
      - Address the statistics page (and C(/healthz)) binds on the proxy host. Defaults to V(127.0.0.1).
      - The page lists every route, backend and server without authentication; any other than a loopback address
        gives a warning. Falls back to E(FLOW_PROXY_STATS_ADDRESS).
    type: str
  proxy_stats_port:
    description: Port of the statistics page on O(proxy_stats_address). Defaults to V(8404).
    type: int
  proxy_admin_address:
    description:
      - Address HAProxy's runtime API and master CLI bind on the proxy host. Defaults to V(127.0.0.1).
      - Both take admin commands without authentication; any other than a loopback address gives a warning.
        The master CLI takes a new address when the proxy container is created. Falls back to E(FLOW_PROXY_ADMIN_ADDRESS).
    type: str
  proxy_admin_port:
    description: Port of HAProxy's runtime API on O(proxy_admin_address). Defaults to V(9999).
    type: int
  proxy_master_port:
    description: Port of HAProxy's master CLI on O(proxy_admin_address). Defaults to V(9998).
    type: int
  proxy_max_servers:
    description:
      - Instances of one color the proxy sends requests to (the slots of its C(server-template)), 1 to 500.
        Defaults to V(32). Falls back to E(FLOW_PROXY_MAX_SERVERS).
      - An instance beyond them would run and get no request, so M(dockerflow.flow.flow_proxy) refuses to switch to a
        color with more instances and warns about other routed services that have more. It records the value in the
        service's route, and M(dockerflow.flow.flow_deploy) and M(dockerflow.flow.flow_scale) refuse to go beyond it.
    type: int
  consul_dns:
    description:
      - Consul's DNS interface as the proxy host reaches it, C(HOST:PORT). The proxy finds instances through it,
        so scaling and failing instances reach the proxy without a flow call. Defaults to V(127.0.0.1:8600).
    type: str
"""
