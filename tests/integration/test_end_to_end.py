# -*- coding: utf-8 -*-
"""End to end, as a user runs it: playbooks/setup.yml brings up Consul, Registrator and the proxy on
this machine, then playbooks/flow.yml and playbooks/rollback.yml walk the seed's README
(deploy + proxy, a new release + stop-old, scale +2 / -2, deploy only then proxy + stop-old, rollback)
with HTTP checks through the setup's proxy after every step.

Nothing here uses the harness's Consul: the setup's own agent, proxy and Registrator run on free
loopback ports under names ``dockerflow-test-<id>-*`` (test_roles_infra.Infra), the Compose project
is ``dftest*``; the fixture removes all of it (containers, volumes, networks, the Registrator image,
the Consul configuration directory), also when a step fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import docker
import pytest
import yaml

from conftest import ANSIBLE_PLAYBOOK, APP_V1, APP_V2, FlowProject, wait_for
from support.answers import served
from test_roles_infra import Infra, ansible_env, output, recap

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOW_PLAYBOOK = os.path.join(ROOT, "playbooks", "flow.yml")
ROLLBACK_PLAYBOOK = os.path.join(ROOT, "playbooks", "rollback.yml")
PATH = "/api/v1/books"


class EndToEnd:
    """The setup (Infra) plus one books-ms-like project driven through the flow playbooks."""

    def __init__(self, infra, project, docker_client):
        self.infra, self.project, self.docker = infra, project, docker_client
        self.service = project.service
        self.proxy_url = "http://127.0.0.1:%d" % infra.proxy["proxy_http_port"]
        # What a user passes on the command line: the seed's names, plus the setup's proxy and Consul.
        self.common = {"project_dir": project.dir, "consul_address": infra.consul_url,
                       "flow_publish_address": "127.0.0.1", "flow_health_timeout": 30, "flow_lock_timeout": 60,
                       "flow_consul_dns": infra.consul_dns}
        self.common.update(("flow_" + name, value) for name, value in infra.proxy.items())

    def playbook(self, *args, playbook=FLOW_PLAYBOOK):
        completed = subprocess.run([ANSIBLE_PLAYBOOK, playbook, "-e", json.dumps(self.common)] + list(args),
                                   cwd=self.project.dir, env=ansible_env(PWD=self.project.dir),
                                   capture_output=True, text=True, timeout=600, check=False)
        text = output(completed)
        assert completed.returncode == 0 and "Traceback" not in text, text[-6000:]
        return completed

    def get(self, path=PATH):
        try:
            with urllib.request.urlopen(self.proxy_url + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return 0, str(exc)

    def served(self, times=6):
        return served(self.get, times)

    def statuses(self, color):
        return sorted(c.status for c in self.project.containers(color))

    def state(self):
        url = "%s/v1/kv/dockerflow/services/%s?raw" % (self.infra.consul_url, self.service)
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def cleanup(self):
        label = "com.docker.compose.project=%s" % self.project.name
        for container in self.docker.containers.list(all=True, filters={"label": label}) + self.project.containers():
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for network in self.docker.networks.list(filters={"label": label}):
            network.remove()
        for volume in self.docker.volumes.list(filters={"label": label}):
            volume.remove(force=True)


@pytest.fixture
def e2e(tmp_path, docker_client):
    (tmp_path / "infra").mkdir()
    infra = Infra(tmp_path / "infra")
    project = FlowProject(tmp_path, docker_client)
    run = EndToEnd(infra, project, docker_client)
    try:
        yield run
    finally:
        run.cleanup()
        infra.cleanup(docker_client)


@pytest.mark.long_running
def test_setup_then_the_seed_walkthrough_through_the_setups_proxy(e2e, docker_client):
    project, infra, service = e2e.project, e2e.infra, e2e.service

    # setup.yml on this machine: Consul has a leader, the proxy answers 503 on a path nothing routes.
    setup = infra.setup()
    assert setup.returncode == 0, output(setup)[-6000:]
    assert recap(setup)["localhost"]["failed"] == 0
    assert docker_client.containers.get(infra.prefix + "registrator").status == "running"
    assert wait_for(lambda: e2e.get()[0] == 503, timeout=10, what="the proxy's 503 on an unrouted path")

    project.write("docker-flow.yml", yaml.safe_dump({
        "target": "app", "side_targets": ["db"], "blue_green": True, "service_path": [PATH], "health_path": "/health"}))

    # --flow=deploy --flow=proxy: release 1 as blue, routed.
    first = e2e.playbook("-e", "flow=deploy,proxy")
    assert "The proxy routes %s to blue." % service in first.stdout
    assert e2e.served() == ("blue", "1")
    assert e2e.statuses("blue") == ["running"]

    # A new release without downtime: --flow=deploy --flow=proxy --flow=stop-old.
    project.set_image(APP_V2)
    e2e.playbook("-e", "flow=deploy,proxy,stop-old")
    assert e2e.served() == ("green", "2")
    assert e2e.statuses("blue") == ["exited"], "the old release is stopped, kept for a rollback"
    assert e2e.state()["live_color"] == "green"

    # --scale=+2 --flow=scale --flow=proxy: three instances, the proxy spreads requests over them.
    e2e.playbook("-e", "flow=scale,proxy", "-e", "scale=+2")
    assert e2e.statuses("green") == ["running"] * 3
    wait_for(lambda: len({e2e.get()[1]["hostname"] for _request in range(12)}) == 3, timeout=15,
             what="three green instances answering through the proxy")
    assert e2e.served() == ("green", "2")
    # ...and -2.
    e2e.playbook("-e", "flow=scale,proxy", "-e", "scale=-2")
    assert e2e.statuses("green") == ["running"]
    wait_for(lambda: len({e2e.get()[1]["hostname"] for _request in range(6)}) == 1, timeout=15,
             what="one green instance answering after scaling down")
    assert e2e.served() == ("green", "2")

    # Testing a release in production first: --flow=deploy runs blue beside green; users still get green.
    project.set_image(APP_V1)
    e2e.playbook("-e", "flow=deploy")
    assert e2e.statuses("blue") == ["running"] and e2e.statuses("green") == ["running"]
    assert project.answer(project.running("blue")[0])["version"] == "1", "the new release answers on its own port"
    assert e2e.served() == ("green", "2")
    # Then --flow=proxy --flow=stop-old.
    e2e.playbook("-e", "flow=proxy,stop-old")
    assert e2e.served() == ("blue", "1")
    assert e2e.statuses("green") == ["exited"]

    # rollback.yml: green (release 2) runs and serves again, blue is stopped.
    rolled = e2e.playbook(playbook=ROLLBACK_PLAYBOOK)
    assert "(green) of %s is live again" % service in rolled.stdout, rolled.stdout[-3000:]
    assert e2e.served() == ("green", "2")
    assert e2e.statuses("green") == ["running"] and e2e.statuses("blue") == ["exited"]
    assert e2e.state()["live_color"] == "green"

    # setup.yml again keeps the service's route (the proxy is re-synced from Consul) and changes nothing.
    again = infra.setup()
    assert again.returncode == 0, output(again)[-6000:]
    assert recap(again)["localhost"]["changed"] == 0, again.stdout[-6000:]
    assert e2e.served() == ("green", "2")
