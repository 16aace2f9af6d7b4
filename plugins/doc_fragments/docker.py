# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine to run instances on, for example V(unix:///var/run/docker.sock) or V(tcp://10.0.0.5:2376).
      - Falls back to E(FLOW_HOST), then E(DOCKER_HOST), then the C(host) key of C(docker-flow.yml), then the local socket.
      - The API version is negotiated with the engine.
    type: str
    aliases: [host]
  cert_path:
    description:
      - Directory with C(ca.pem), C(cert.pem) and C(key.pem) for TLS to O(docker_host).
      - Falls back to E(FLOW_CERT_PATH), then E(DOCKER_CERT_PATH), then C(cert_path) in C(docker-flow.yml).
      - A plain C(tcp://) O(docker_host) without it gives a warning (on a loopback address too, since every local user
        can reach it).
    type: path
    aliases: [docker_cert_path]
  tls_verify:
    description:
      - Verify the engine's certificate against C(ca.pem). Defaults to true when O(cert_path) is set.
      - Falls back to E(FLOW_TLS_VERIFY), then E(DOCKER_TLS_VERIFY).
    type: bool
  docker_timeout:
    description: Seconds to wait for one Docker API call.
    type: int
    default: 60
  backend:
    description:
      - How instances run. V(container) runs them as plain containers on O(docker_host).
        V(swarm) runs each release as a Swarm service C(<service_name>-<color>) whose tasks are the instances;
        O(docker_host) must be a Swarm manager.
      - V(auto) (the default) is V(swarm) when O(docker_host) is an active Swarm manager, else V(container).
      - "With V(swarm), tasks publish their ports in C(host) mode on an ephemeral port of their node, and the
        registrator of that node (role C(dockerflow.flow.registrator)) registers them in its Consul agent with the
        node's address; the modules wait until Consul lists every new task passing. O(publish_address) and
        O(service_address) do not apply. The Compose C(deploy) section (replicas, placement, update, rollback and
        restart policies, resources, endpoint mode) configures the services; see C(docs/swarm.md)."
      - Falls back to E(FLOW_BACKEND), then C(backend) in C(docker-flow.yml).
    type: str
    choices: [auto, container, swarm]
requirements:
  - docker (the Docker SDK for Python) >= 7.0
"""
