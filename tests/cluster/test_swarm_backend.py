# -*- coding: utf-8 -*-
"""The Swarm backend on the multi-node cluster: every module against a real Swarm manager over TLS.

One service goes through a release's whole life while a load runs through the proxy on the proxy
host (flow_proxy switching it), and not one request may fail: release 1 (blue) spread over the
three nodes with a side target as its own service, release 2 (green), scale ``+2`` and ``-1``,
stop-old (blue scaled to 0, its service kept), an unhealthy release that fails and leaves green
serving and the blue service as it was, rollback to blue. Consul is checked at every step: each
running task registered once, by the registrator of its node, with that node's address.

The tests run in file order and share the service (a module fixture); a failure stops the rest
from meaning much, so each test names what it expects the state to be.
"""

from __future__ import annotations

import collections
import os
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import http_get, wait_for
from loadgen import LoadGenerator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: the integration harness
from integration.conftest import FlowProject  # noqa: E402
from support.playbook import assert_clean_failure  # noqa: E402

PATH = "/api/v1/swarm-books"
LOAD_RATE = 40  # requests a second over a few keep-alive connections
LOAD_CONNECTIONS = 4
HEALTH_TIMEOUT = 90  # a task may have to pull its image on a node first


class SwarmService:
    """The test's service: its Compose project, module runs, and what the manager and Consul say."""

    def __init__(self, cluster, root):
        self.cluster = cluster
        # FlowProject runs the modules through ansible-playbook and parses their results; its
        # container-level observers do not apply here (the instances are tasks on three nodes).
        self.project = FlowProject(root, docker_client=None, compose=self.compose("app:1"), consul_url=cluster.consul_url)
        self.name = self.project.name
        self.service = self.project.service
        self.options = {
            "project_dir": self.project.dir,
            "docker_host": cluster.manager_url,
            "cert_path": cluster.certs,
            "consul_address": cluster.consul_url,
            "backend": "swarm",
            "lock_timeout": 120,
        }
        self.proxy_options = {"proxy_docker_host": cluster.proxy_docker_host, "proxy_docker_cert_path": cluster.certs}

    def compose(self, image):
        return {
            "services": {
                # Swarm replaces a task whose HEALTHCHECK fails: the image's (1 s, 2 s timeout, 2 retries) fails
                # on a machine this loaded, so the test keeps the image's test with patient timings.
                "app": {"image": self.cluster.image(image), "ports": ["8080"],
                        "healthcheck": {"interval": "2s", "timeout": "20s", "retries": 5},
                        "depends_on": ["db"], "deploy": {"placement": {"max_replicas_per_node": 2}}},
                "db": {"image": self.cluster.image("python:3"), "command": ["sleep", "infinity"],
                       "deploy": {"restart_policy": {"condition": "any"}}},
            }
        }

    def release(self, image):
        self.project.write_compose(self.compose(image))

    def run(self, module, params=None, expect_failure=False):
        params = dict(self.options, **(params or {}))
        if module in ("flow_proxy", "flow_stop_old"):
            params.update(self.proxy_options)
        if module in ("flow_deploy", "flow_scale", "flow_rollback"):
            params.setdefault("health_timeout", HEALTH_TIMEOUT)
        started = time.monotonic()
        result = self.project.run(module, params, expect_failure=expect_failure, defaults=False)
        result["seconds"] = round(time.monotonic() - started, 1)
        print("[swarm backend] %s %s: %s (%.1fs)"
              % (module, params.get("scale", ""), result.get("msg", "done"), result["seconds"]))
        return result

    # -- the manager's view ----------------------------------------------------------------------
    def swarm_service(self, color):
        found = self.cluster.manager.api.services(filters={"name": "%s-%s" % (self.service, color)})
        return next((s for s in found if s["Spec"]["Name"] == "%s-%s" % (self.service, color)), None)

    def tasks(self, color):
        """{task ID: (node address, published port)} of the color's running tasks."""
        nodes = {n["ID"]: n["Status"]["Addr"] for n in self.cluster.manager.api.nodes()}
        tasks = self.cluster.manager.api.tasks(filters={"service": "%s-%s" % (self.service, color),
                                                        "desired-state": "running"})
        return {
            t["ID"]: (nodes.get(t.get("NodeID")), t["Status"]["PortStatus"]["Ports"][0]["PublishedPort"])
            for t in tasks if t["Status"]["State"] == "running"
        }

    def replicas(self, color):
        return self.swarm_service(color)["Spec"]["Mode"]["Replicated"]["Replicas"]

    # -- Consul's view -----------------------------------------------------------------------------
    def consul_entries(self):
        """[(service ID, node address, port, color, passing, node name)] of the service in the catalog."""
        entries = self.cluster.consul("/v1/health/service/%s" % self.service)
        return [
            (e["Service"]["ID"], e["Service"]["Address"], e["Service"]["Port"], e["Service"]["Tags"][0],
             all(c["Status"] == "passing" for c in e["Checks"]), e["Node"]["Node"])
            for e in entries
        ]

    def assert_consul_matches(self, color):
        """Every running task of ``color`` is in Consul once, passing, at its node's address and port."""
        tasks = self.tasks(color)
        entries = [e for e in self.consul_entries() if e[3] == color]
        assert sorted((address, port) for _id, address, port, _color, _passing, _node in entries) == sorted(
            tasks.values()), (entries, tasks)
        assert all(passing for *_rest, passing, _node in entries), entries
        assert len({entry[0] for entry in entries}) == len(entries)  # no duplicate registrations
        # registered by the registrator of the node the task runs on: the agent is that node's
        agent_of = {address: node for node, address in zip(("node1", "node2", "node3"), self.cluster.nodes, strict=True)}
        assert all(agent_of[address] == node for _id, address, _port, _color, _passing, node in entries), entries

    # -- through the proxy -------------------------------------------------------------------------
    def served(self, times=8):
        answers = collections.Counter()
        for _request in range(times):
            status, body = http_get(self.cluster.proxy_url + PATH)
            assert status == 200, (status, body)
            answers[(body["color"], body["version"])] += 1
        assert len(answers) == 1, answers
        return next(iter(answers))

    def cleanup(self):
        manager = self.cluster.manager.api
        for label in ("dockerflow.service=%s" % self.service, "com.docker.compose.project=%s" % self.name):
            for service in manager.services(filters={"label": label}):
                manager.remove_service(service["ID"])
        for network in manager.networks(filters={"label": "com.docker.compose.project=%s" % self.name}):
            wait_for(lambda network=network: _removed(manager, network["Id"]), timeout=60, what="network removal")
        for key in ("services", "locks"):
            http_delete(self.cluster.consul_url + "/v1/kv/dockerflow/%s/%s" % (key, self.service))


def _removed(manager, network_id):
    try:
        manager.remove_network(network_id)
        return True
    except Exception:  # still in use while the last tasks stop
        return False


def http_delete(url):
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5):
        pass


@pytest.fixture(scope="module")
def swarm_service(provisioned_cluster, tmp_path_factory):
    service = SwarmService(provisioned_cluster.cluster, tmp_path_factory.mktemp("swarm-backend"))
    yield service
    service.cleanup()


@pytest.fixture(scope="module")
def load(swarm_service):
    """Requests through the proxy host for the whole life of the service; the last test reads the count."""
    holder = {}
    yield holder
    if "load" in holder and holder["load"].running():
        holder["load"].stop()


def test_release_1_runs_as_blue_tasks_spread_over_the_nodes_with_the_side_target_a_service(swarm_service, load):
    result = swarm_service.run("flow_deploy", {"scale": 3, "side_targets": ["db"], "health_path": "/health"})
    assert result["changed"] and result["color"] == "blue" and result["release"] == 1
    assert any(step.startswith("Consul lists 3 new instance(s) passing") for step in result["steps"]), result["steps"]
    tasks = swarm_service.tasks("blue")
    assert len(tasks) == 3 and {address for address, _port in tasks.values()} == set(swarm_service.cluster.nodes)
    # the ports are ephemeral host-mode ports (Docker picks them), not the container port
    assert all(port != 8080 for _address, port in tasks.values()), tasks
    swarm_service.assert_consul_matches("blue")
    assert {i["address"] for i in result["instances"]} == set(swarm_service.cluster.nodes)
    blue = swarm_service.swarm_service("blue")["Spec"]
    # the Compose healthcheck only changes timings: the image's HEALTHCHECK still gates the tasks
    assert blue["Labels"]["dockerflow.docker-health"] == "true"
    assert blue["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {
        "Interval": 2 * 10**9, "Timeout": 20 * 10**9, "Retries": 5,
    }

    db = swarm_service.cluster.manager.api.services(filters={"name": "%s-db" % swarm_service.name})
    assert [s["Spec"]["Labels"].get("dockerflow.side-target") for s in db] == ["true"]
    assert db[0]["Spec"]["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"

    again = swarm_service.run("flow_deploy", {"scale": 3, "side_targets": ["db"], "health_path": "/health"})
    assert not again["changed"], again["msg"]

    routed = swarm_service.run("flow_proxy", {"service_path": [PATH]})
    assert routed["live_color"] == "blue"
    assert swarm_service.served() == ("blue", "1")
    load["load"] = LoadGenerator(swarm_service.cluster.proxy_url + PATH, connections=LOAD_CONNECTIONS, rate=LOAD_RATE,
                                 max_requests=10**6, max_seconds=1200,
                                 allowed_hosts=(swarm_service.cluster.proxyhost,)).start()


def test_release_2_runs_as_green_beside_blue_and_the_proxy_switches_to_it(swarm_service, load):
    swarm_service.release("app:2")
    result = swarm_service.run("flow_deploy", {"health_path": "/health"})
    assert result["color"] == "green" and result["release"] == 2 and len(result["instances"]) == 3
    assert len(swarm_service.tasks("blue")) == 3  # the live color is untouched
    swarm_service.assert_consul_matches("green")
    assert swarm_service.served() == ("blue", "1")
    swarm_service.run("flow_proxy", {"service_path": [PATH]})
    assert swarm_service.served() == ("green", "2")


def test_scale_adds_and_removes_tasks_of_the_live_color(swarm_service, load):
    up = swarm_service.run("flow_scale", {"scale": "+2"})
    assert up["instances_count"] == 5 and swarm_service.replicas("green") == 5
    swarm_service.assert_consul_matches("green")
    down = swarm_service.run("flow_scale", {"scale": "-1"})
    assert down["instances_count"] == 4 and swarm_service.replicas("green") == 4
    assert len(swarm_service.tasks("green")) == 4
    # the task Swarm picked is named, and Consul no longer lists it
    removed = [step for step in down["steps"] if step.startswith("removed ")]
    assert len(removed) == 1 and removed[0].startswith("removed %s-green." % swarm_service.service), down["steps"]
    swarm_service.assert_consul_matches("green")


def test_stop_old_scales_the_old_color_to_zero_and_keeps_its_service(swarm_service, load):
    result = swarm_service.run("flow_stop_old")
    assert len(result["stopped"]) == 3 and result["removed"] == []
    blue = swarm_service.swarm_service("blue")
    assert blue is not None and blue["Spec"]["Mode"]["Replicated"]["Replicas"] == 0
    assert blue["Spec"]["Labels"]["dockerflow.stopped-replicas"] == "3"
    wait_for(lambda: not [e for e in swarm_service.consul_entries() if e[3] == "blue"], timeout=30,
             what="the blue tasks to leave Consul")
    info = swarm_service.run("flow_info")
    assert [m["status"] for m in info["colors"]["blue"]["members"]] == ["exited"] * 3
    assert info["colors"]["green"]["instances"] == 4
    assert swarm_service.served() == ("green", "2")


def test_an_unhealthy_release_fails_and_leaves_the_live_color_serving(swarm_service, load):
    before = swarm_service.swarm_service("blue")["Spec"]
    swarm_service.release("app:unhealthy")
    result = swarm_service.run("flow_deploy", {"health_timeout": 60}, expect_failure=True)
    assert_clean_failure(result)
    assert "Release 3 of %s (blue) failed" % swarm_service.service in result["msg"], result["msg"]
    assert "HEALTHCHECK" in result["msg"] or "unhealthy" in result["msg"], result["msg"]
    assert result["msg"].endswith("Live color green keeps serving."), result["msg"]
    after = swarm_service.swarm_service("blue")["Spec"]
    assert after == before  # release 1, scaled to 0 with 3 stopped, as stop-old left it
    assert swarm_service.served() == ("green", "2")
    # Its tasks were stopped before the module returned; their registrators deregister them as they go.
    wait_for(lambda: not [e for e in swarm_service.consul_entries() if e[3] == "blue"], timeout=15,
             what="the unhealthy release's tasks to leave Consul")


def test_rollback_scales_the_kept_release_up_again_and_no_request_failed(swarm_service, load):
    swarm_service.release("app:1")
    result = swarm_service.run("flow_rollback")
    assert result["color"] == "blue" and result["release"] == 1
    assert len(swarm_service.tasks("blue")) == 3 and swarm_service.replicas("blue") == 3
    swarm_service.assert_consul_matches("blue")
    swarm_service.run("flow_proxy", {"service_path": [PATH]})
    assert swarm_service.served() == ("blue", "1")
    swarm_service.run("flow_stop_old")
    assert swarm_service.replicas("green") == 0
    assert swarm_service.served() == ("blue", "1")

    time.sleep(2)
    summary = load["load"].stop().summary()
    print("[swarm backend] load through the proxy host: %d requests, %d failed, by version %s, p99 %s ms"
          % (summary["requests"], summary["failed"], summary["by_version"], summary["p99_ms"]))
    assert summary["requests"] > 100 and summary["failed"] == 0, summary


def test_backend_swarm_needs_a_manager(swarm_service):
    """The proxy host's engine is in no swarm: backend=swarm says so, auto picks plain containers."""
    refused = swarm_service.run("flow_info", {"docker_host": swarm_service.cluster.proxy_docker_host},
                                expect_failure=True)
    assert_clean_failure(refused)
    assert refused["msg"].startswith("backend=swarm needs a Swarm manager, and the engine at %s (docker_host) is not "
                                     "in Swarm mode" % swarm_service.cluster.proxy_docker_host), refused["msg"]
    with open(os.path.join(swarm_service.project.dir, "docker-flow.yml"), "w") as handle:
        yaml.safe_dump({"backend": "kubernetes"}, handle)
    options = dict(swarm_service.options)
    del options["backend"]
    result = swarm_service.project.run("flow_info", options, expect_failure=True, defaults=False)
    assert result["msg"] == "backend='kubernetes' (from file) is not valid: use one of auto, container, swarm.", result
    os.unlink(os.path.join(swarm_service.project.dir, "docker-flow.yml"))
