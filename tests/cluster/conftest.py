# -*- coding: utf-8 -*-
"""Fixtures for the multi-node cluster tests (tests/cluster/README.md).

The cluster is the one ``tests/cluster/cluster.sh up`` started (``run.sh`` does that first):
Docker-in-Docker nodes on a network of their own, each engine on tcp 2376 with TLS, sshd on
every node. Nothing here is mocked: Ansible reaches the nodes over SSH with the generated
inventory, the modules reach the Swarm manager and the proxy host over TLS, load goes to the
proxy host's address.

``cluster`` reads ``env.sh`` (``DOCKERFLOW_CLUSTER_ENV`` names another one) and gives TLS
clients of the nodes' engines; ``provisioned_cluster`` runs ``playbooks/setup.yml`` over SSH once
a session (swarm, Consul, registrator, proxy), for every test that needs the platform.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import connect

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# benchmarks/ (not a package) holds the load generator; tests/ the shared helpers (support).
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from support.cluster_env import read_env_file  # noqa: E402

CLUSTER_SH = os.path.join(ROOT, "tests", "cluster", "cluster.sh")
SETUP_PLAYBOOK = os.path.join(ROOT, "playbooks", "setup.yml")
ANSIBLE_PLAYBOOK = os.environ.get("DOCKERFLOW_ANSIBLE_PLAYBOOK", "ansible-playbook")
CONSUL_HTTP_PORT = 8500
PROXY_HTTP_PORT = 80
# Tests that make the nodes leave their swarm run before anything provisions the cluster.
SWARM_TEARDOWN_MARK = "swarm_teardown"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "%s: makes the nodes leave their swarm; runs before the tests that provision the cluster"
        % SWARM_TEARDOWN_MARK)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if item.get_closest_marker(SWARM_TEARDOWN_MARK) else 1)


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
    env.update(extra)
    return env


def recap(completed):
    """{host: {"ok": n, "changed": n, "failed": n, ...}} from a playbook's PLAY RECAP."""
    hosts = {}
    for line in completed.stdout.split("PLAY RECAP")[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if match:
            hosts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return hosts


def run_playbook(args, cwd=ROOT, timeout=900, env=None):
    started = time.monotonic()
    completed = subprocess.run([ANSIBLE_PLAYBOOK] + list(args), cwd=cwd, env=env or ansible_env(),
                               capture_output=True, text=True, timeout=timeout, check=False)
    completed.seconds = time.monotonic() - started
    return completed


def output(completed):
    return "%s\n%s" % (completed.stdout, completed.stderr)


def wait_for(predicate, timeout=10, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def http_get(url, timeout=5):
    """(status, parsed JSON or text); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


class Cluster:
    """The running test cluster, as env.sh describes it."""

    def __init__(self, env_file):
        env = read_env_file(env_file)
        self.env_file = env_file
        self.env = env
        self.manager_url = env["DOCKERFLOW_CLUSTER_MANAGER"]
        self.certs = env["DOCKERFLOW_CLUSTER_CERTS"]
        self.registry = env["DOCKERFLOW_CLUSTER_REGISTRY"]
        self.proxyhost = env["DOCKERFLOW_CLUSTER_PROXYHOST"]
        self.nodes = env["DOCKERFLOW_CLUSTER_NODES"].split()
        self.inventory = env["DOCKERFLOW_CLUSTER_INVENTORY"]
        self.name = env.get("DOCKERFLOW_CLUSTER_NAME", "dftest")
        self.node_containers = env.get(
            "DOCKERFLOW_CLUSTER_NODE_CONTAINERS", " ".join("%s-node%d" % (self.name, n) for n in (1, 2, 3))).split()
        self.consul_url = "http://%s:%d" % (self.proxyhost, CONSUL_HTTP_PORT)
        self.proxy_url = "http://%s:%d" % (self.proxyhost, PROXY_HTTP_PORT)
        self.proxy_docker_host = "tcp://%s:2376" % self.proxyhost
        self._clients = {}

    def image(self, name):
        """A test image as the nodes pull it from the cluster's registry."""
        return "%s/dockerflow-test/%s" % (self.registry, name)

    def engine(self, address):
        """A Docker SDK client of the engine at ``address`` (an IP or tcp://IP:2376), over TLS."""
        host = address if address.startswith("tcp://") else "tcp://%s:2376" % address
        if host not in self._clients:
            # The modules' own connection: it keeps cert_path's CA even when REQUESTS_CA_BUNDLE is set.
            self._clients[host], _warnings = connect(host, self.certs, True, timeout=30)
        return self._clients[host]

    @property
    def manager(self):
        return self.engine(self.manager_url)

    def node_container(self, node_hostname):
        """The host-side container of a node, by its hostname (node1 -> <name>-node1)."""
        return "%s-%s" % (self.name, node_hostname)

    def swarm_nodes(self):
        """{hostname: (state, availability)} from the manager (the newest entry per hostname)."""
        nodes = {}
        for node in sorted(self.manager.api.nodes(), key=lambda n: n.get("UpdatedAt", "")):
            nodes[node["Description"]["Hostname"]] = node["Status"]["State"]
        return nodes

    def consul(self, path):
        status, body = http_get(self.consul_url + path)
        assert status == 200, (path, status, body)
        return body

    def ansible_setup(self, *args):
        """playbooks/setup.yml over SSH with the cluster's inventory."""
        return run_playbook(["-i", self.inventory, SETUP_PLAYBOOK] + list(args))

    def cluster_sh(self, command):
        return subprocess.run([CLUSTER_SH, command], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="session")
def cluster():
    env_file = os.environ.get("DOCKERFLOW_CLUSTER_ENV") or os.path.join(ROOT, ".cache", "cluster", "env.sh")
    if not os.path.isfile(env_file):
        pytest.fail("%s is missing: start the cluster with tests/cluster/cluster.sh up (run.sh does)." % env_file)
    running = Cluster(env_file)
    try:
        running.manager.ping()
    except Exception as exc:  # the harness must have started it: fail, never skip
        pytest.fail("The cluster's manager %s does not answer over TLS (%s): tests/cluster/cluster.sh up."
                    % (running.manager_url, exc))
    return running


class Provisioned:
    """What provisioned_cluster did: setup.yml's first and second run, and the nodes' swarm state before."""

    def __init__(self, cluster, setup, again, swarm_before):
        self.cluster = cluster
        self.setup = setup
        self.again = again
        self.swarm_before = swarm_before


@pytest.fixture(scope="session")
def provisioned_cluster(cluster):
    """setup.yml over SSH, once a session: a swarm of node1-3, a Consul server on the proxy host and
    client agents on the nodes, a registrator on every node, the proxy on the proxy host. It runs a
    second time right away (test_walkthrough checks that nothing changed): later, an edit of the
    registrator daemon or of the module_utils it imports during the session would rightly make
    the registrator role rebuild."""
    swarm_before = cluster.manager.info()["Swarm"]["LocalNodeState"]
    runs = []
    for run in ("setup.yml over SSH", "setup.yml again"):
        completed = cluster.ansible_setup()
        print("\n[cluster] %s: exit %d in %.1fs" % (run, completed.returncode, completed.seconds))
        if completed.returncode != 0:
            pytest.fail("%s failed on the cluster:\n%s" % (run, output(completed)[-6000:]))
        runs.append(completed)
    return Provisioned(cluster, runs[0], runs[1], swarm_before)
