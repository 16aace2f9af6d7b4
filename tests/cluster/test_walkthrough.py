# -*- coding: utf-8 -*-
"""The seed's walkthrough on a multi-node Swarm cluster, the way a user runs it.

``playbooks/setup.yml`` over SSH (the generated inventory) makes node1-3 a swarm and runs Consul,
the registrator and the proxy; then ``playbooks/flow.yml`` runs on this machine with the Swarm
backend (``backend: swarm`` in docker-flow.yml), the modules reaching the manager and the proxy
host over TLS (host + cert_path, proxy_docker_host + proxy_docker_cert_path): release 1 spread
over the nodes and routed, release 2 + proxy + stop-old under load with no failed request, scale
``+2``; then a worker node is stopped (``docker stop``) under load: its tasks run again on the
other nodes, the proxy follows, and the failed requests are counted, printed and bounded; the
node is started again and is Ready. The other worker then crashes (``docker kill``) the same way.
Load goes from this machine to the proxy host's address.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time

import yaml

from conftest import ROOT, http_get, output, recap, run_playbook, wait_for
from loadgen import LoadGenerator
from support.answers import served

FLOW_PLAYBOOK = os.path.join(ROOT, "playbooks", "flow.yml")
PATH = "/api/v1/books"
SERVICE = "dftest-books-app"  # the Compose project (the directory) and its target
NODES = ("node1", "node2", "node3")
MANAGER = "node1"
# Load during the steps: requests a second over a few keep-alive connections, like a small service.
LOAD_RATE = 40
LOAD_CONNECTIONS = 4
# A stopped node: Swarm marks it Down after ~15 s and starts its tasks elsewhere after ~20 s
# (multi-node-cluster.md). The proxy must stop sending to it long before: its checks take a
# server out after two missed 1 s checks, and a failed connection is retried on another server.
FAILED_WINDOW_BOUND = 15  # seconds from the stop to the last request that failed (when it was sent)
RESCHEDULE_BOUND = 60  # seconds from the stop until the live color runs at full count again
REJOIN_BOUND = 60  # seconds from `docker start` until the node is Ready again
HEALTHCHECK = {"test": ["CMD", "bash", "/app/healthcheck.sh"], "interval": "2s", "timeout": "10s",
               "retries": 5, "start_period": "5s"}


class Report:
    """Step timings and load figures, printed as the walkthrough goes and written to ``path``
    line by line (run.sh prints the file at the end, also after a failure)."""

    def __init__(self, path):
        self.started = time.monotonic()
        self.path = path
        with open(path, "w"):
            pass

    def add(self, text):
        line = "[walkthrough %6.1fs] %s" % (time.monotonic() - self.started, text)
        print(line, flush=True)
        with open(self.path, "a") as handle:
            handle.write(line + "\n")


class Walkthrough:
    def __init__(self, cluster, project_dir, report):
        self.cluster, self.dir, self.report = cluster, project_dir, report
        # The seed's option names, as on its command line; the cluster's addresses and TLS files.
        self.common = {
            "project_dir": project_dir,
            "host": cluster.manager_url,
            "cert_path": cluster.certs,
            "consul_address": cluster.consul_url,
            "proxy_docker_host": cluster.proxy_docker_host,
            "proxy_docker_cert_path": cluster.certs,
        }

    def write_project(self, image):
        compose = {"services": {
            "app": {"image": self.cluster.image(image), "ports": ["8080"], "environment": {"DB_HOST": "db"},
                    # The image's own check (2 s timeout, 2 retries) fails on a machine this busy, and
                    # Swarm replaces a task whose check fails: a check a production service would have.
                    "healthcheck": HEALTHCHECK},
            "db": {"image": self.cluster.image("python:3"), "command": ["sleep", "infinity"]},
        }}
        with open(os.path.join(self.dir, "docker-compose.yml"), "w") as handle:
            yaml.safe_dump(compose, handle)

    def flow(self, step_name, *args):
        started = time.monotonic()
        completed = run_playbook([FLOW_PLAYBOOK, "-e", json.dumps(self.common)] + list(args), cwd=self.dir)
        text = output(completed)
        assert completed.returncode == 0 and "Traceback" not in text, text[-6000:]
        self.report.add("%s: %.1fs" % (step_name, time.monotonic() - started))
        return completed

    # -- what runs where, from the manager ---------------------------------------------------
    def services(self):
        return {s["Spec"]["Name"]: s for s in self.cluster.manager.api.services(
            filters={"label": "dockerflow.service=%s" % SERVICE})}

    def running_tasks(self, color):
        """[(node hostname, task)] of the color's tasks that run."""
        name = "%s-%s" % (SERVICE, color)
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in self.cluster.manager.api.nodes()}
        tasks = self.cluster.manager.api.tasks(filters={"service": name, "desired-state": "running"})
        return [(hostnames.get(t.get("NodeID"), "?"), t) for t in tasks if t["Status"]["State"] == "running"]

    def placement(self, color):
        return collections.Counter(node for node, _task in self.running_tasks(color))

    # -- through the proxy ---------------------------------------------------------------
    def get(self):
        return http_get(self.cluster.proxy_url + PATH)

    def served(self, times=6):
        return served(self.get, times)

    def answering_hostnames(self, requests=40):
        names = set()
        for _request in range(requests):
            status, body = self.get()
            if status == 200:
                names.add(body["hostname"])
        return names

    def task_hostnames(self, color):
        """The container hostnames of the color's running tasks (what the app answers with)."""
        return {task["Spec"]["ContainerSpec"].get("Hostname") or task["Status"]["ContainerStatus"]["ContainerID"][:12]
                for _node, task in self.running_tasks(color)}

    def load(self):
        return LoadGenerator(self.cluster.proxy_url + PATH, connections=LOAD_CONNECTIONS, rate=LOAD_RATE,
                             max_requests=10 ** 6, max_seconds=900, allowed_hosts=(self.cluster.proxyhost,)).start()


def docker_host_cli(*args):
    """The host engine's CLI: the node containers are this machine's containers."""
    completed = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def node_goes_down_under_load(run, cluster, report, victim, how):
    """``docker <how>`` the victim node under load: its green tasks run again on the other nodes, the
    proxy serves exactly those, the failed requests end within FAILED_WINDOW_BOUND; then the node
    is started again and is Ready, its Consul agent and registrator back, with no failed request."""
    placement = run.placement("green")
    container = cluster.node_container(victim)
    load = run.load()
    time.sleep(3)
    down_at = time.time()
    try:
        docker_host_cli(how, container)
        report.add("docker %s %s (%d green tasks): %.1fs" % (how, victim, placement[victim], time.time() - down_at))

        def rescheduled():  # one look at the manager: five running tasks, none on the victim
            now = run.placement("green")
            return now if sum(now.values()) == 5 and victim not in now else None

        moved = wait_for(rescheduled, timeout=RESCHEDULE_BOUND, interval=1, what="five green tasks on the other nodes")
        report.add("green rescheduled %.1fs after the %s: %s" % (time.time() - down_at, how, dict(sorted(moved.items()))))
        assert cluster.swarm_nodes()[victim] == "down"
        wait_for(lambda: run.answering_hostnames(60) == run.task_hostnames("green"), timeout=30, interval=1,
                 what="the proxy serving exactly the rescheduled green tasks")
        report.add("the proxy serves exactly the rescheduled tasks %.1fs after the %s" % (time.time() - down_at, how))
        time.sleep(3)
        summary = load.stop().summary()
        failures = [f for f in load.result.failures_timeline if f["wall"] >= down_at]
        window = (max(f["wall"] for f in failures) - down_at) if failures else 0.0
        report.add("load during the %s of %s: %d requests, %d failed (%.2f%%), the last one sent %.1fs after it; reasons %s"
                   % (how, victim, summary["requests"], summary["failed"],
                      100.0 * summary["failed"] / max(summary["requests"], 1), window,
                      dict(collections.Counter(str(f["reason"]) for f in failures))))
        assert summary["failed"] == len(failures), "failures before the %s: %s" % (how, summary["first_failures"])
        assert window <= FAILED_WINDOW_BOUND, "requests failed until %.1fs after the %s" % (window, how)
        assert run.served() == ("green", "2")
    finally:
        if load.running():
            load.stop()
        started_at = time.time()
        docker_host_cli("start", container)  # also when an assertion above failed

    load = run.load()
    wait_for(lambda: cluster.swarm_nodes().get(victim) == "ready", timeout=REJOIN_BOUND, interval=1,
             what="%s Ready again" % victim)
    report.add("%s Ready again %.1fs after docker start" % (victim, time.time() - started_at))
    address = cluster.nodes[NODES.index(victim)]
    wait_for(lambda: any(m["Node"] == victim and m["Address"] == address for m in cluster.consul("/v1/catalog/nodes")),
             timeout=REJOIN_BOUND, interval=1, what="%s's Consul agent back in the catalog" % victim)
    wait_for(lambda: cluster.engine(address).containers.get("registrator").status == "running",
             timeout=REJOIN_BOUND, interval=1, what="%s's registrator running again" % victim)
    time.sleep(3)
    rejoin = load.stop().summary()
    report.add("load while %s rejoined: %d requests, %d failed" % (victim, rejoin["requests"], rejoin["failed"]))
    assert rejoin["failed"] == 0, rejoin
    assert run.served() == ("green", "2")
    assert sum(run.placement("green").values()) == 5


def test_setup_yml_makes_the_cluster_over_ssh(provisioned_cluster):
    cluster, setup = provisioned_cluster.cluster, provisioned_cluster.setup
    hosts = recap(setup)
    assert set(NODES) | {"proxyhost"} <= set(hosts), hosts
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in hosts.values()), hosts

    # The swarm: node1 manages, node2 and node3 work, all Ready. A cluster that started without a
    # swarm got it from the swarm role.
    swarm = cluster.manager.info()["Swarm"]
    assert swarm["LocalNodeState"] == "active" and swarm["ControlAvailable"], swarm
    if provisioned_cluster.swarm_before == "inactive":
        assert "TASK [dockerflow.flow.swarm : Create the swarm on the first manager]" in setup.stdout
    managers = {n["Description"]["Hostname"] for n in cluster.manager.api.nodes(filters={"role": "manager"})}
    assert managers == {MANAGER}
    assert cluster.swarm_nodes() == dict.fromkeys(NODES, "ready")

    # Consul: the server on the proxy host leads; every node's agent joined it with its address.
    assert cluster.consul("/v1/status/leader") == "%s:8300" % cluster.proxyhost
    members = {n["Node"]: n["Address"] for n in cluster.consul("/v1/catalog/nodes")}
    assert members == dict(zip(NODES + ("proxyhost",), cluster.nodes + [cluster.proxyhost], strict=True)), members

    # The registrator runs on every Docker node, built there from the registry's base image.
    for address in cluster.nodes:
        assert cluster.engine(address).containers.get("registrator").status == "running", address

    # The proxy answers on the proxy host; nothing is routed yet on a path no service has.
    status, _body = http_get(cluster.proxy_url + "/dftest-nothing-routed")
    assert status == 503, status

    # setup.yml run again at once changed nothing on any host.
    changed = {host: counts["changed"] for host, counts in recap(provisioned_cluster.again).items() if counts["changed"]}
    assert changed == {}, provisioned_cluster.again.stdout[-6000:]


def test_walkthrough_on_swarm_with_a_node_stopped_under_load(provisioned_cluster, tmp_path):
    cluster = provisioned_cluster.cluster
    report = Report(os.path.join(os.path.dirname(cluster.env_file), "walkthrough-report.txt"))
    project_dir = tmp_path / "dftest-books"
    project_dir.mkdir()
    run = Walkthrough(cluster, str(project_dir), report)
    run.write_project("app:1")
    with open(project_dir / "docker-flow.yml", "w") as handle:
        yaml.safe_dump({"target": "app", "side_targets": ["db"], "blue_green": True, "backend": "swarm",
                        "service_path": [PATH], "health_path": "/health"}, handle)

    # --flow=deploy --flow=proxy --scale=3: release 1 as blue, three tasks spread over the nodes.
    run.flow("release 1: deploy + proxy, scale 3", "-e", "flow=deploy,proxy", "-e", "scale=3")
    assert run.served() == ("blue", "1")
    placement = run.placement("blue")
    report.add("release 1 placement: %s" % dict(sorted(placement.items())))
    assert sorted(placement) == list(NODES) and set(placement.values()) == {1}, placement
    wait_for(lambda: run.answering_hostnames() == run.task_hostnames("blue"), timeout=30,
             what="every blue task answering through the proxy")

    # --flow=deploy --flow=proxy --flow=stop-old under load: release 2 as green, no failed request.
    run.write_project("app:2")
    load = run.load()
    run.flow("release 2: deploy + proxy + stop-old (under load)", "-e", "flow=deploy,proxy,stop-old")
    time.sleep(2)  # answers after the switch are part of the figure
    switch = load.stop().summary()
    report.add("load during release 2: %d requests, %d failed, by version %s, p99 %s ms"
               % (switch["requests"], switch["failed"], switch["by_version"], switch["p99_ms"]))
    assert switch["failed"] == 0, switch
    assert switch["by_version"].get("2", 0) > 0, switch
    assert run.served() == ("green", "2")
    assert run.placement("blue") == {}, "stop-old leaves no blue task running"
    assert sum(run.placement("green").values()) == 3

    # --scale=+2 --flow=scale --flow=proxy: five green tasks, still spread, all answering.
    run.flow("scale +2", "-e", "flow=scale,proxy", "-e", "scale=+2")
    placement = run.placement("green")
    report.add("green after scale +2: %s" % dict(sorted(placement.items())))
    assert sum(placement.values()) == 5 and sorted(placement) == list(NODES), placement
    assert max(placement.values()) - min(placement.values()) <= 1, placement
    wait_for(lambda: run.answering_hostnames(60) == run.task_hostnames("green"), timeout=30,
             what="the five green tasks answering through the proxy")

    # A worker node with green tasks stops (docker stop: its engine shuts its containers down) under
    # load; then, once it is back, the other worker crashes (docker kill: everything on it dies at once).
    for how in ("stop", "kill"):
        placement = run.placement("green")
        victim = max((node for node in placement if node != MANAGER), key=lambda node: (placement[node], node))
        node_goes_down_under_load(run, cluster, report, victim, how)


def test_setup_yml_on_the_proxy_host_again_keeps_the_routes(provisioned_cluster):
    """After the walkthrough: the proxy role re-syncs the proxy from the routes recorded in Consul,
    changes nothing, and the proxy answers as before (release 2)."""
    cluster = provisioned_cluster.cluster
    before = http_get(cluster.proxy_url + PATH)
    again = cluster.ansible_setup("--limit", "proxy")
    assert again.returncode == 0, output(again)[-6000:]
    assert recap(again)["proxyhost"]["changed"] == 0, again.stdout[-6000:]
    print("\n[cluster] setup.yml --limit proxy after the walkthrough: %.1fs" % again.seconds)
    after = http_get(cluster.proxy_url + PATH)
    assert after[0] == before[0], (before, after)
    if before[0] == 200:
        assert (after[1]["color"], after[1]["version"]) == (before[1]["color"], before[1]["version"])
