# -*- coding: utf-8 -*-
"""``--backend swarm``: the benchmark's service on the test cluster, as a Swarm service.

The cluster must be up and provisioned first (benchmarks/README.md):

    tests/cluster/cluster.sh up
    ansible-playbook -i .cache/cluster/inventory.yml playbooks/setup.yml

``cluster.sh up`` starts the Docker-in-Docker nodes and writes ``.cache/cluster/env.sh``
(``DOCKERFLOW_CLUSTER_ENV`` names another one); setup.yml makes node1-3 a swarm and runs
Consul, a registrator on every node and the proxy on the proxy host. The modules reach the
manager and the proxy host over TLS; the load goes to the proxy host's address, the one
address besides 127.0.0.1 the benchmark talks to. ``SwarmBench`` removes the services,
networks and Consul keys it made (``dfbench*``) on exit, and leftovers of a killed run first;
the cluster itself, its proxy and Consul stay.
"""

from __future__ import annotations

import os
import sys
import time

import docker

from common import (
    KV_LOCKS,
    KV_SERVICES,
    PREFIX,
    REPO,
    SERVICE_PATH,
    Bench,
    BenchError,
    consul,
    consul_kv_keys,
    log,
)

sys.path.insert(0, os.path.join(REPO, "tests"))
from support.cluster_env import read_env_file  # noqa: E402 - the cluster tests read it the same way

try:
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import connect
except ImportError:  # pragma: no cover - `make collection-path` and PYTHONPATH provide it
    connect = None

DEFAULT_ENV_FILE = os.path.join(REPO, ".cache", "cluster", "env.sh")
PROXY_NAME = "dockerflow-proxy"  # setup.yml's proxy on the proxy host
PROXY_HTTP_PORT = 80
CONSUL_HTTP_PORT = 8500


class SwarmBench(Bench):
    """A benchmark run whose service is a Swarm service on the test cluster."""

    def __init__(self, proxy, keep=False, env_file=None):
        super().__init__(proxy, keep=keep)
        env_file = env_file or os.environ.get("DOCKERFLOW_CLUSTER_ENV") or DEFAULT_ENV_FILE
        if not os.path.isfile(env_file):
            raise BenchError("%s is missing: start the cluster with tests/cluster/cluster.sh up, then run "
                             "playbooks/setup.yml with its inventory (benchmarks/README.md)." % env_file)
        env = read_env_file(env_file)
        self.manager_url = env["DOCKERFLOW_CLUSTER_MANAGER"]
        self.certs = env["DOCKERFLOW_CLUSTER_CERTS"]
        self.proxyhost = env["DOCKERFLOW_CLUSTER_PROXYHOST"]
        self.nodes = env["DOCKERFLOW_CLUSTER_NODES"].split()
        self.consul_url = "http://%s:%d" % (self.proxyhost, CONSUL_HTTP_PORT)
        registry = env["DOCKERFLOW_CLUSTER_REGISTRY"]
        self.app_images = tuple("%s/dockerflow-test/app:%s" % (registry, tag) for tag in ("1", "2"))
        self.allowed_hosts = (self.proxyhost,)
        self.manager = None

    # -- what the modules and the load use ------------------------------------------------------
    @staticmethod
    def default_compose(image):
        # One task on each node (deploy.replicas is the first release's count; later ones keep it).
        # Swarm replaces a task whose HEALTHCHECK fails; the stand-in app's (1 s, 2 s timeout, 2 retries)
        # fails on a 2-core machine running a whole cluster, so the image's test runs with patient timings.
        return {"services": {"app": {"image": image, "ports": ["8080"], "deploy": {"replicas": 3},
                                     "healthcheck": {"interval": "2s", "timeout": "20s", "retries": 5}}}}

    def module_defaults(self, module):
        params = {"docker_host": self.manager_url, "cert_path": self.certs, "backend": "swarm",
                  "consul_address": self.consul_url}
        if module == "flow_deploy":
            params.update(health_path="/health", health_timeout=120)  # a node may pull the image first
        if module in ("flow_proxy", "flow_stop_old"):
            params.update(proxy_docker_host="tcp://%s:2376" % self.proxyhost, proxy_docker_cert_path=self.certs)
        return params

    def url(self, path=SERVICE_PATH):
        return "http://%s:%d%s" % (self.proxyhost, PROXY_HTTP_PORT, path)

    def describe(self):
        nodes = self.manager.api.nodes()
        return {
            "manager": self.manager_url,
            "nodes": sorted("%s %s %s" % (n["Description"]["Hostname"], n["Spec"]["Role"], n["Status"]["State"])
                            for n in nodes),
            "engine": self.manager.version().get("Version"),
            "proxy": self.url(),
            "consul": self.consul_url,
        }

    def task_placement(self, service):
        """{node hostname: running tasks} of the Swarm services of ``service``."""
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in self.manager.api.nodes()}
        placement = {}
        for entry in self.manager.api.services(filters={"label": "dockerflow.service=%s" % service}):
            for task in self.manager.api.tasks(filters={"service": entry["ID"], "desired-state": "running"}):
                if task["Status"]["State"] == "running":
                    host = hostnames.get(task.get("NodeID"), "?")
                    placement[host] = placement.get(host, 0) + 1
        return dict(sorted(placement.items()))

    # -- life cycle ------------------------------------------------------------------------------
    def preflight(self):
        if connect is None:
            raise BenchError("The collection is not importable: run `make collection-path` and set PYTHONPATH.")
        try:
            self.manager, _warnings = connect(self.manager_url, self.certs, True, timeout=120)
            swarm = self.manager.info().get("Swarm") or {}
        except Exception as exc:
            raise BenchError("The cluster's manager %s does not answer (%s): tests/cluster/cluster.sh up." % (
                self.manager_url, exc))
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise BenchError("%s is no Swarm manager: run playbooks/setup.yml with the cluster's inventory." % self.manager_url)
        try:
            leader = consul("GET", "/v1/status/leader", timeout=3, base=self.consul_url)
        except OSError as exc:
            raise BenchError("No Consul at %s (%s): run playbooks/setup.yml with the cluster's inventory." % (
                self.consul_url, exc))
        if not leader:
            raise BenchError("Consul at %s has no leader." % self.consul_url)
        self.remove_leftovers()

    def cleanup(self, everything=False, quiet_if_none=False):
        projects = {p.name for p in self.projects}
        errors = []

        def ours(name):
            return bool(name) and ((everything and name.startswith(PREFIX)) or name in projects)

        try:
            api = self.manager.api
            for entry in api.services(filters={"label": "com.docker.compose.project"}):
                if ours(entry["Spec"]["Labels"].get("com.docker.compose.project")):
                    api.remove_service(entry["ID"])
                    log("removed Swarm service %s" % entry["Spec"]["Name"])
            for network in api.networks(filters={"label": "com.docker.compose.project"}):
                if ours((network.get("Labels") or {}).get("com.docker.compose.project")):
                    self._remove_network(network)
        except docker.errors.DockerException as exc:
            errors.append("Swarm services: %s" % exc)
        try:
            keys = set()
            for prefix in (KV_SERVICES, KV_LOCKS):
                for key in consul_kv_keys(prefix + PREFIX, base=self.consul_url):
                    if ours(key[len(prefix):].rsplit("-app", 1)[0]):
                        keys.add(key)
            for key in sorted(keys):
                consul("DELETE", "/v1/kv/%s" % key, base=self.consul_url)
        except OSError as exc:
            errors.append("Consul KV at %s: %s" % (self.consul_url, exc))
        return self.cleanup_done(errors, everything)

    def _remove_network(self, network):
        deadline = time.monotonic() + 60
        while True:
            try:
                self.manager.api.remove_network(network["Id"])
                log("removed network %s" % network["Name"])
                return
            except docker.errors.APIError:  # in use until the last task stopped
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1)
