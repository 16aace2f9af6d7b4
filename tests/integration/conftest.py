# -*- coding: utf-8 -*-
"""Integration harness: every test drives the modules through ``ansible-playbook``
against the real Docker engine and the real Consul agent that ``make test`` starts.

Nothing here is mocked. A test project is a temporary directory holding a
Compose file; its Compose project name starts with ``dftest`` so the harness's
cleanup script can find whatever a killed run left behind.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest
import yaml

# tests/support (shared helpers: an extra dockerd, ...) imports as ``support``.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support.pem import TestCA  # noqa: E402
from support.playbook import keep_result_task, result_callback_env  # noqa: E402

CONSUL_URL = os.environ.get("DOCKERFLOW_TEST_CONSUL", "http://127.0.0.1:8500")
CONSUL_DNS = os.environ.get("DOCKERFLOW_TEST_CONSUL_DNS", "127.0.0.1:8600")
PROXY_IMAGE = "dockerflow-test/haproxy:3.0"
ANSIBLE_PLAYBOOK = os.environ.get("DOCKERFLOW_ANSIBLE_PLAYBOOK", "ansible-playbook")
APP_V1 = "dockerflow-test/app:1"
APP_V2 = "dockerflow-test/app:2"
APP_UNHEALTHY = "dockerflow-test/app:unhealthy"
APP_NO_HEALTHCHECK = "dockerflow-test/app:nohealthcheck"
BASE_IMAGE = "dockerflow-test/base:bookworm"


def consul_get(path, consul_url=CONSUL_URL):
    with urllib.request.urlopen(consul_url + path, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


def consul_put(path, data=b"", consul_url=CONSUL_URL):
    request = urllib.request.Request(consul_url + path, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def consul_delete(path, consul_url=CONSUL_URL):
    request = urllib.request.Request(consul_url + path, method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def http_json(port, path="/", timeout=3):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as response:
        return response.status, json.loads(response.read())


def pytest_configure(config):
    config.addinivalue_line("markers", "long_running: a test of minutes (a molecule scenario, a walkthrough), started first")


def pytest_collection_modifyitems(items):
    """Tests marked long_running first, the others in their order. xdist hands tests out in collection order:
    a test of minutes collected near the end kept one worker busy for minutes after the other had run out."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env(version="auto")
    try:
        client.ping()
    except Exception as exc:  # the harness must have started the engine: fail, never skip
        pytest.fail("No Docker engine answers (%s); run the tests with `make test`." % exc)
    for image in (APP_V1, APP_V2, APP_UNHEALTHY, APP_NO_HEALTHCHECK, BASE_IMAGE, PROXY_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail("Test image %s is missing; `make images` builds it." % image)
    return client


@pytest.fixture(scope="session")
def consul_agent():
    try:
        leader = consul_get("/v1/status/leader")
    except OSError as exc:
        pytest.fail("No Consul agent at %s (%s); `make consul` starts one." % (CONSUL_URL, exc))
    assert leader, "Consul at %s has no leader" % CONSUL_URL
    return CONSUL_URL


DEFAULT_COMPOSE = {
    "services": {
        "app": {"image": APP_V1, "ports": ["8080"], "depends_on": ["db"]},
        "db": {"image": BASE_IMAGE, "command": "sleep infinity"},
    }
}


class FlowProject:
    """A Compose project on disk plus helpers to run modules and look at the results."""

    def __init__(self, root, docker_client, compose=None, consul_url=CONSUL_URL):
        self.name = "dftest%s" % uuid.uuid4().hex[:8]
        self.dir = os.path.join(str(root), self.name)
        os.makedirs(self.dir)
        self.docker = docker_client
        self.service = "%s-app" % self.name
        self.proxy = None  # a TestProxy: its options go to flow_proxy and flow_stop_old
        self.consul_url = consul_url  # the fault tests give some projects a Consul of their own
        self.write_compose(compose or DEFAULT_COMPOSE)

    # -- files -------------------------------------------------------------------
    def write_compose(self, compose):
        self.write("docker-compose.yml", yaml.safe_dump(compose) if isinstance(compose, dict) else compose)

    def set_image(self, image, service="app"):
        path = os.path.join(self.dir, "docker-compose.yml")
        with open(path) as handle:
            compose = yaml.safe_load(handle)
        compose["services"][service]["image"] = image
        self.write_compose(compose)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as handle:
            handle.write(text)

    # -- running modules -----------------------------------------------------------
    def playbook(self, module, params, check=False, diff=False, env=None, defaults=True):
        if self.proxy is not None and module in ("flow_proxy", "flow_canary", "flow_stop_old", "flow_scale", "flow_release"):
            params = dict(self.proxy.options, **(params or {}))
        params = dict(params or {})
        if defaults:
            params.setdefault("project_dir", self.dir)
            params.setdefault("consul_address", self.consul_url)
            params.setdefault("publish_address", "127.0.0.1")
            if module in ("flow_deploy", "flow_scale", "flow_release"):
                params.setdefault("health_timeout", 30)
            params.setdefault("lock_timeout", 60)
        result_path = os.path.join(self.dir, "result-%s.json" % uuid.uuid4().hex[:6])
        play = [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {"name": "under test", "dockerflow.flow.%s" % module: params, "register": "result",
                     "ignore_errors": True},
                    keep_result_task("result", result_path),
                ],
            }
        ]
        path = os.path.join(self.dir, "play-%s.yml" % uuid.uuid4().hex[:6])
        with open(path, "w") as handle:
            yaml.safe_dump(play, handle)
        command = [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter={{ ansible_playbook_python }}", path]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        run_env = dict(os.environ)
        for key in list(run_env):
            if key.startswith("FLOW_") or key in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONSUL_HTTP_ADDR"):
                del run_env[key]
        run_env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
                        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "DOCKERFLOW_RESULT_PATH": result_path})
        run_env.update(result_callback_env(run_env))
        run_env.update(env or {})
        # tests/harness/coverage.sh measure --local-runs-only: measure this local run's module.
        if os.environ.get("DOCKERFLOW_TEST_LOCAL_MODULE_COVERAGE"):
            run_env["_ANSIBLE_ANSIBALLZ_COVERAGE_CONFIG"] = os.environ["DOCKERFLOW_TEST_LOCAL_MODULE_COVERAGE"]
        return command, run_env

    def run(self, module, params=None, check=False, diff=False, env=None, expect_failure=False, defaults=True):
        command, run_env = self.playbook(module, params, check, diff, env, defaults)
        completed = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        completed.env_result_path = run_env["DOCKERFLOW_RESULT_PATH"]
        return self.parse(completed, expect_failure)

    @staticmethod
    def parse(completed, expect_failure=False):
        result_path = completed.env_result_path
        try:
            with open(result_path) as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            raise AssertionError("ansible-playbook gave no result:\n%s\n%s" % (completed.stdout, completed.stderr))
        assert "Traceback" not in completed.stdout + completed.stderr, completed.stdout + completed.stderr
        if expect_failure:
            assert result.get("failed"), "expected a failure, got %s" % json.dumps(result, indent=1)
            assert "Traceback" not in result.get("msg", ""), result["msg"]
            assert "\n" not in result["msg"], "msg must be one line: %r" % result["msg"]
            assert "Traceback" not in result.get("exception", ""), result["exception"]
        else:
            assert not result.get("failed"), "task failed: %s" % json.dumps(result, indent=1)
        return result

    # -- observing -------------------------------------------------------------------
    def containers(self, color=None, status=None):
        filters = {"label": ["dockerflow.service=%s" % self.service]}
        if color:
            filters["label"].append("dockerflow.color=%s" % color)
        found = self.docker.containers.list(all=True, filters=filters)
        if status:
            found = [c for c in found if c.status == status]
        return sorted(found, key=lambda c: c.name)

    def running(self, color=None):
        return self.containers(color, status="running")

    def state(self):
        try:
            return consul_get("/v1/kv/dockerflow/services/%s?raw" % self.service, self.consul_url)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def registrations(self):
        services = consul_get("/v1/agent/services", self.consul_url)
        return {sid: entry for sid, entry in services.items()
                if (entry.get("Meta") or {}).get("dockerflow-service") == self.service}

    def port_of(self, container):
        container.reload()
        return int(container.ports["8080/tcp"][0]["HostPort"])

    def answer(self, container):
        return http_json(self.port_of(container))[1]

    def snapshot(self):
        """Everything a failed step must leave untouched."""
        return {
            "containers": sorted((c.name, c.status, c.image.tags[0] if c.image.tags else c.image.id) for c in self.containers()),
            "state": self.state(),
            "registrations": sorted(self.registrations()),
        }

    def cleanup(self):
        for container in self.docker.containers.list(
            all=True, filters={"label": "com.docker.compose.project=%s" % self.name}
        ) + self.containers():
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for network in self.docker.networks.list(filters={"label": "com.docker.compose.project=%s" % self.name}):
            network.remove()
        for volume in self.docker.volumes.list(filters={"label": "com.docker.compose.project=%s" % self.name}):
            volume.remove(force=True)
        for sid in self.registrations():
            consul_put("/v1/agent/service/deregister/%s" % sid, consul_url=self.consul_url)
        consul_delete("/v1/kv/dockerflow/services/%s" % self.service, self.consul_url)
        consul_delete("/v1/kv/dockerflow/locks/%s" % self.service, self.consul_url)


@pytest.fixture
def flow_project(tmp_path, docker_client, consul_agent):
    project = FlowProject(tmp_path, docker_client)
    yield project
    project.cleanup()


@pytest.fixture
def make_project(tmp_path, docker_client, consul_agent):
    made = []

    def factory(compose=None, **options):
        project = FlowProject(tmp_path, docker_client, compose, **options)
        made.append(project)
        return project

    yield factory
    for project in made:
        project.cleanup()


def free_ports(count):
    """Free loopback ports below Docker's and the kernel's ephemeral range (32768+), so a
    port published by a container started meanwhile cannot take them."""
    ports = []
    while len(ports) < count:
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


class TestProxy:
    """One proxy container per test, on free loopback ports, so tests can run side by side."""

    __test__ = False

    def __init__(self, docker_client):
        self.docker = docker_client
        self.name = "dockerflow-test-proxy-%s" % uuid.uuid4().hex[:8]
        http, stats, admin, master = free_ports(4)
        self.http_port = http
        self.options = {
            "proxy_name": self.name,
            "proxy_image": PROXY_IMAGE,
            "proxy_listen_address": "127.0.0.1",
            "proxy_http_port": http,
            "proxy_stats_port": stats,
            "proxy_admin_port": admin,
            "proxy_master_port": master,
            "consul_dns": CONSUL_DNS,
        }

    def get(self, path, host=None, timeout=5, headers=None):
        """(status, body) of a GET through the proxy, with ``headers`` if given; body is JSON when it parses."""
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path), headers=headers or {})
        if host:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        except OSError as exc:  # refused or reset: the proxy is not listening (yet)
            return 0, str(exc)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode("utf-8", "replace")

    def container(self):
        return self.docker.containers.get(self.name)

    def config(self):
        return self.container().exec_run(["cat", "/usr/local/etc/haproxy/haproxy.cfg"]).output.decode()

    def runtime(self, command):
        port = str(self.options["proxy_admin_port"])
        return self.container().exec_run(["bash", "/usr/local/etc/haproxy/dockerflow-cli.sh", port, command]).output.decode()

    def servers_up(self, backend):
        count = 0
        for line in self.runtime("show stat").splitlines():
            fields = line.split(",")
            is_server = len(fields) > 17 and fields[0] == backend and fields[1] not in ("BACKEND", "FRONTEND")
            if is_server and fields[17].startswith("UP"):
                count += 1
        return count

    def cleanup(self):
        # The proxy's container, and any old one a replacement left (<name>-retiring-<id>: proxy_replacement).
        for container in self.docker.containers.list(all=True, filters={"name": self.name}):
            if container.name == self.name or container.name.startswith(self.name + "-retiring-"):
                container.remove(force=True)
        try:
            self.docker.volumes.get(self.name + "-config").remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def proxy(docker_client, consul_agent):
    test_proxy = TestProxy(docker_client)
    yield test_proxy
    test_proxy.cleanup()


@pytest.fixture
def routed_project(flow_project, proxy):
    """A project whose flow_proxy and flow_stop_old calls use the test's own proxy."""
    flow_project.proxy = proxy
    return flow_project


@pytest.fixture(scope="module")
def ca():
    """The in-memory test CA whose server certificates the HTTPS clients trust."""
    return TestCA()


@pytest.fixture
def https_project(routed_project, proxy):
    """A routed project whose proxy also listens for HTTPS (served once a certificate is recorded); the test
    proxy's recorded certificates are removed afterwards."""
    proxy.https_port = free_ports(1)[0]
    proxy.options["proxy_https_port"] = proxy.https_port
    yield routed_project
    consul_delete("/v1/kv/dockerflow/proxy/certificates/%s?recurse=true" % proxy.name)


def wait_for(predicate, timeout=10, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def dedent(text):
    return textwrap.dedent(text).lstrip()


def assert_molecule_sequence_ran(role, text):
    """``text``, the output of `molecule test` in roles/<role>: each action of the scenario's test_sequence ran
    as often as the sequence lists it (check mode too, where it does), and succeeded."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "roles", role, "molecule", "default", "molecule.yml")
    with open(path) as handle:
        sequence = yaml.safe_load(handle)["scenario"]["test_sequence"]
    assert {"converge", "idempotence", "verify", "destroy"} <= set(sequence), sequence
    for step in sorted(set(sequence)):
        ran = len(re.findall(r"\[default > %s\] Executed: Successful" % step, text))
        assert ran == sequence.count(step), "%s ran %d time(s), not %d:\n%s" % (step, ran, sequence.count(step),
                                                                                text[-4000:])
