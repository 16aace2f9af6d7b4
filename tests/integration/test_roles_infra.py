# -*- coding: utf-8 -*-
"""The infrastructure roles (consul, proxy) and playbooks/setup.yml against the real engine.

Everything runs on this machine with the offline stand-in images, on free loopback ports and
under names that start with ``dockerflow-test-<id>-``, so it leaves the harness's Consul
(8500/8600) and other test runs alone; fixtures remove what a run made, even when it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import docker
import pytest
import yaml

from conftest import ANSIBLE_PLAYBOOK, PROXY_IMAGE, FlowProject, assert_molecule_sequence_ran, free_ports, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONSUL_IMAGE = "dockerflow-test/consul:1.8.7"
REGISTRATOR_BASE_IMAGE = "dockerflow-test/app:nohealthcheck"  # the stand-in base has no python3
MOLECULE = os.environ.get("DOCKERFLOW_MOLECULE") or os.path.join(os.path.dirname(sys.executable), "molecule")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ansible_env(**extra):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("FLOW_") and key not in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                                                          "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", PY_COLORS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.update(extra)
    return env


def run(command, cwd=ROOT, env=None, timeout=900):
    return subprocess.run(command, cwd=cwd, env=env or ansible_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


def output(completed):
    return "%s\n%s" % (completed.stdout, completed.stderr)


def recap(completed):
    """{host: {"ok", "changed", "unreachable", "failed"}} from the PLAY RECAP."""
    return {host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, counts), strict=True))
            for host, *counts in RECAP.findall(completed.stdout)}


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)


def remove_by_prefix(client, prefix):
    for container in client.containers.list(all=True, filters={"name": prefix}):
        if container.name.startswith(prefix):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": prefix}):
        if volume.name.startswith(prefix):
            try:
                volume.remove(force=True)
            except docker.errors.APIError:
                pass


def ensure_collection_link():
    """The Molecule scenarios find the collection through .build/collections (`make collection-path`)."""
    link = os.path.join(ROOT, ".build", "collections", "ansible_collections", "dockerflow", "flow")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("../../../..", link)
    assert os.path.realpath(link) == os.path.realpath(ROOT), link


class Infra:
    """One setup.yml deployment on this machine: its names, ports and extra vars."""

    def __init__(self, tmp_dir):
        self.id = "s%s" % uuid.uuid4().hex[:6]
        self.prefix = "dockerflow-test-%s-" % self.id
        http, dns, lan, wan, server, proxy_http, stats, admin, master = free_ports(9)
        self.consul_url = "http://127.0.0.1:%d" % http
        self.consul_server_port = server
        self.consul_dns = "127.0.0.1:%d" % dns
        self.proxy_name = self.prefix + "proxy"
        self.registrator_image = "dockerflow-test/registrator:%s" % self.id
        self.proxy = {"proxy_name": self.proxy_name, "proxy_image": PROXY_IMAGE, "proxy_listen_address": "127.0.0.1",
                      "proxy_http_port": proxy_http, "proxy_stats_port": stats, "proxy_admin_port": admin,
                      "proxy_master_port": master}
        self.config_dir = os.path.join(str(tmp_dir), "consul-config")
        self.vars = dict(
            self.proxy,
            consul_image=CONSUL_IMAGE,
            consul_pull="never",
            consul_container_name=self.prefix + "consul",
            consul_config_dir=self.config_dir,
            consul_extra_labels={"dockerflow.test": "1"},
            consul_extra_config={"performance": {"raft_multiplier": 1}},
            consul_bind_address="127.0.0.1",
            consul_http_port=http,
            consul_dns_port=dns,
            consul_serf_lan_port=lan,
            consul_serf_wan_port=wan,
            consul_server_port=server,
            registrator_base_image=REGISTRATOR_BASE_IMAGE,
            registrator_image=self.registrator_image,
            registrator_container_name=self.prefix + "registrator",
            registrator_consul_address=self.consul_url,
            registrator_ip="127.0.0.1",
            ansible_python_interpreter=sys.executable,
        )
        self.vars_file = os.path.join(str(tmp_dir), "setup-vars.json")
        with open(self.vars_file, "w") as handle:
            json.dump(self.vars, handle)

    def setup(self, *extra):
        return run([ANSIBLE_PLAYBOOK, os.path.join(ROOT, "playbooks", "setup.yml"), "-e", "@" + self.vars_file] + list(extra))

    def cleanup(self, client):
        remove_by_prefix(client, self.prefix)
        try:
            client.images.remove(self.registrator_image, force=True)
        except docker.errors.ImageNotFound:
            pass
        shutil.rmtree(self.config_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def infra(tmp_path_factory, docker_client):
    deployment = Infra(tmp_path_factory.mktemp("infra"))
    try:
        deployment.first_run = deployment.setup()
        yield deployment
    finally:
        deployment.cleanup(docker_client)


def test_setup_on_localhost_brings_up_consul_registrator_and_proxy(infra, docker_client):
    first = infra.first_run
    assert first.returncode == 0, output(first)[-6000:]
    assert recap(first)["localhost"]["failed"] == 0

    status, leader = http_get(infra.consul_url + "/v1/status/leader")
    assert status == 200 and json.loads(leader) == "127.0.0.1:%d" % infra.consul_server_port

    consul = docker_client.containers.get(infra.prefix + "consul")
    assert consul.attrs["HostConfig"]["NetworkMode"] == "host"
    assert consul.labels["dockerflow.test"] == "1" and consul.image.tags == [CONSUL_IMAGE]
    assert docker_client.volumes.get(infra.prefix + "consul-data").attrs["Labels"]["dockerflow.test"] == "1"
    assert docker_client.containers.get(infra.prefix + "registrator").status == "running"

    proxy = docker_client.containers.get(infra.proxy_name)
    assert proxy.status == "running" and proxy.attrs["HostConfig"]["NetworkMode"] == "host"
    assert proxy.attrs["Config"]["Image"] == PROXY_IMAGE
    assert http_get("http://127.0.0.1:%d/healthz" % infra.proxy["proxy_stats_port"]) == (200, "ok")
    assert http_get("http://127.0.0.1:%d/nothing-routed" % infra.proxy["proxy_http_port"])[0] == 503
    config = proxy.exec_run(["cat", "/usr/local/etc/haproxy/haproxy.cfg"]).output.decode()
    assert "bind 127.0.0.1:%d" % infra.proxy["proxy_stats_port"] in config, "stats on loopback only"
    assert infra.consul_dns in config, "the proxy resolves instances through this Consul's DNS"


def test_setup_second_run_changes_nothing(infra):
    again = infra.setup()
    assert again.returncode == 0, output(again)[-6000:]
    assert recap(again)["localhost"]["changed"] == 0, again.stdout[-6000:]


def test_the_setup_serves_a_deployed_service(infra, docker_client, tmp_path):
    """The flow modules work on what setup.yml made: deploy, route through its proxy, answer."""
    project = FlowProject(tmp_path, docker_client)
    try:
        common = {"consul_address": infra.consul_url}
        project.run("flow_deploy", dict(common, health_path="/health"))
        routed = project.run("flow_proxy", dict(common, service_path=["/demo"], consul_dns=infra.consul_dns, **infra.proxy))
        assert routed["live_color"] == "blue" and routed["servers_up"] == 1
        url = "http://127.0.0.1:%d/demo/books" % infra.proxy["proxy_http_port"]

        def served():
            answer = http_get(url)
            return answer if answer[0] == 200 else None

        body = wait_for(served, timeout=15, what="the route")[1]
        assert json.loads(body)["color"] == "blue"
        # A later setup run re-syncs the proxy from Consul and keeps the route.
        again = infra.setup()
        assert again.returncode == 0, output(again)[-4000:]
        assert http_get("http://127.0.0.1:%d/demo/books" % infra.proxy["proxy_http_port"])[0] == 200
    finally:
        for container in docker_client.containers.list(
                all=True, filters={"label": "com.docker.compose.project=%s" % project.name}) + project.containers():
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for network in docker_client.networks.list(filters={"label": "com.docker.compose.project=%s" % project.name}):
            network.remove()


@pytest.mark.parametrize("override, expected", [
    ("consul_http_port=abc", ["consul_http_port", "cannot be converted to an int"]),
    ("consul_dns_port=70000", ["consul_dns_port=70000 is not valid"]),
    ("consul_pull=sometimes", ["consul_pull", "sometimes"]),
    ("consul_acl_enabled=true", ["consul_acl_enabled is true but consul_acl_token is empty"]),
])
def test_bad_consul_variable_stops_setup_with_its_name(tmp_path, docker_client, override, expected):
    deployment = Infra(tmp_path)
    try:
        failed = deployment.setup("-e", override)
        assert failed.returncode != 0, output(failed)[-3000:]
        for text in expected:
            assert text in failed.stdout, failed.stdout[-3000:]
        assert recap(failed)["localhost"]["changed"] == 0
        assert not docker_client.containers.list(all=True, filters={"name": deployment.prefix})
    finally:
        deployment.cleanup(docker_client)


@pytest.mark.parametrize("override, expected", [
    ({"proxy_http_port": "http"}, ["proxy_http_port", "cannot be converted to an int"]),
    ({"proxy_stats_port": 70000}, ["proxy_stats_port=70000 is not valid"]),
    ({"proxy_admin_port": 28999, "proxy_master_port": 28999}, ["must differ"]),
    ({"proxy_state": "gone"}, ["proxy_state", "gone"]),
    ({"proxy_https_port": 70000}, ["proxy_https_port=70000 is not valid"]),
    # the sync's output is hidden (no_log: keys), its one-line message is not
    ({"proxy_certificates": [{"name": "a b", "cert": "-", "key": "SECRET-KEY-TEXT"}]},
     ["proxy_certificates[0].name='a b' is not valid"]),
])
def test_bad_proxy_variable_fails_with_its_name(tmp_path, docker_client, override, expected):
    name = "dockerflow-test-%s-proxy" % uuid.uuid4().hex[:6]
    play = [{"hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "dockerflow.flow.proxy", "vars": dict({"proxy_name": name, "proxy_image": PROXY_IMAGE},
                                                                      **override)}]}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    failed = run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
                  "-e", "ansible_python_interpreter=%s" % sys.executable, str(path)])
    assert failed.returncode != 0, output(failed)[-3000:]
    for text in expected:
        assert text in failed.stdout, failed.stdout[-3000:]
    assert "SECRET-KEY-TEXT" not in failed.stdout + failed.stderr
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_proxy_state_absent_removes_what_a_killed_replacement_left(tmp_path, docker_client, routed_project, proxy):
    """A replacement of the proxy killed midway leaves the old container as <name>-retiring-<id>, holding the
    volume (test_proxy_replace.py): proxy_state absent removes it too, and then the volume."""
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    container = proxy.container()
    container.rename("%s-retiring-%s" % (proxy.name, container.id[:12]))
    play = [{"hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "dockerflow.flow.proxy", "vars": {"proxy_name": proxy.name, "proxy_state": "absent",
                                                                  "proxy_remove_config": True}}]}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    removed = run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter=%s" % sys.executable, str(path)])
    assert removed.returncode == 0, output(removed)[-3000:]
    assert not docker_client.containers.list(all=True, filters={"name": proxy.name})
    assert not docker_client.volumes.list(filters={"name": proxy.name + "-config"})


def test_example_inventory_clusters_the_agents(tmp_path):
    """The multi-host example, in check mode on this machine: one server, clients that join it."""
    out = tmp_path / "configs"
    out.mkdir()
    play = [{"hosts": "proxy:docker_nodes", "gather_facts": False,
             "roles": ["dockerflow.flow.consul"],
             "post_tasks": [{"name": "keep the configuration", "check_mode": False, "delegate_to": "localhost",
                             "ansible.builtin.copy": {"content": "{{ __consul_config | to_json }}",
                                                      "dest": "%s/{{ inventory_hostname }}.json" % out}}]}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    checked = run([ANSIBLE_PLAYBOOK, "-i", os.path.join(ROOT, "inventories", "example-multi-host"), "--check",
                   "-e", "ansible_connection=local", "-e", "ansible_become=false",
                   "-e", "ansible_python_interpreter=%s" % sys.executable,
                   "-e", "consul_acl_enabled=false", "-e", "consul_image=dockerflow-test/absent-consul:0",
                   str(path)])
    assert checked.returncode == 0, output(checked)[-5000:]
    configs = {path.stem: json.loads(path.read_text()) for path in out.iterdir()}
    assert sorted(configs) == ["node-1", "node-2", "node-3", "proxy-1"]
    server = configs["proxy-1"]
    assert server["server"] is True and server["bootstrap_expect"] == 1 and server["retry_join"] == []
    assert server["bind_addr"] == "10.0.0.2" and server["client_addr"] == "127.0.0.1 10.0.0.2"
    for node, address in (("node-1", "10.0.0.5"), ("node-2", "10.0.0.6"), ("node-3", "10.0.0.7")):
        client = configs[node]
        assert client["server"] is False and "bootstrap_expect" not in client
        assert client["retry_join"] == ["10.0.0.2:8301"] and client["bind_addr"] == address
        assert client["client_addr"] == "127.0.0.1" and client["ports"]["http"] == 8500


def test_awx_layout_runs_without_prompts():
    checked = run([ANSIBLE_PLAYBOOK, "--syntax-check", "-i", os.path.join(ROOT, "inventories", "awx", "hosts.yml"),
                   "-e", "@" + os.path.join(ROOT, "inventories", "awx", "extra-vars.yml"),
                   os.path.join(ROOT, "playbooks", "setup.yml")])
    assert checked.returncode == 0, output(checked)
    with open(os.path.join(ROOT, "playbooks", "setup.yml")) as handle:
        plays = yaml.safe_load(handle)
    assert not any("vars_prompt" in play for play in plays)
    with open(os.path.join(ROOT, "execution-environment.yml")) as handle:
        ee = yaml.safe_load(handle)
    assert ee["version"] == 3
    wanted = {re.split(r"[<>=!~ ]", requirement)[0].lower() for requirement in ee["dependencies"]["python"]}
    assert {"docker", "py-consul", "requests", "pyyaml"} <= wanted


# Ports each scenario takes from the environment (molecule.yml has fixed defaults for manual runs).
SCENARIO_PORTS = {
    "consul": ["CONSUL_HTTP", "CONSUL_DNS", "CONSUL_SERF_LAN", "CONSUL_SERF_WAN", "CONSUL_SERVER"],
    "proxy": ["CONSUL_HTTP", "CONSUL_DNS", "CONSUL_SERF_LAN", "CONSUL_SERF_WAN", "CONSUL_SERVER",
              "PROXY_HTTP", "PROXY_STATS", "PROXY_ADMIN", "PROXY_MASTER"],
    "acme": ["CONSUL_HTTP", "CONSUL_DNS", "CONSUL_SERF_LAN", "CONSUL_SERF_WAN", "CONSUL_SERVER",
             "PROXY_HTTP", "PROXY_HTTPS", "PROXY_STATS", "PROXY_ADMIN", "PROXY_MASTER",
             "PEBBLE", "PEBBLE_MANAGEMENT"],
}


@pytest.mark.long_running
@pytest.mark.parametrize("role", sorted(SCENARIO_PORTS))
def test_molecule_scenario(role, tmp_path, docker_client):
    """`molecule test` of the role's default scenario: each action of its test_sequence (converge, idempotence,
    verify, destroy; check mode where the scenario has it) ran as often as the sequence says, and succeeded."""
    ensure_collection_link()
    ident = "m%s" % uuid.uuid4().hex[:6]
    names = SCENARIO_PORTS[role]
    ports = free_ports(len(names))
    env = ansible_env(MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"), DOCKERFLOW_MOLECULE_ID=ident,
                      **{"DOCKERFLOW_MOLECULE_%s_PORT" % name: str(port) for name, port in zip(names, ports, strict=True)})
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)  # the scenario sets its own
    try:
        completed = run([MOLECULE, "test"], cwd=os.path.join(ROOT, "roles", role), env=env)
        text = output(completed)
        assert completed.returncode == 0, text[-8000:]
        assert_molecule_sequence_ran(role, text)
        assert not docker_client.containers.list(all=True, filters={"name": "dockerflow-test-%s-" % ident}), \
            "destroy leaves nothing behind"
    finally:
        remove_by_prefix(docker_client, "dockerflow-test-%s-" % ident)
