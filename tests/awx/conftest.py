# -*- coding: utf-8 -*-
"""Harness of the AWX tests (tests/awx/README.md): playbooks run as AWX runs a job template.

AWX syncs the project (a checkout, then ``ansible-galaxy collection install -r collections/requirements.yml``
into a cache), then gives each job a private data directory of its own, with a copy of the project and of the
installed collections, ``inventory/hosts`` (a script printing the inventory as JSON), ``env/extravars``,
``env/settings`` and ``env/envvars``, and runs it with ``ansible_runner.run``, cancelling through
``cancel_callback``. The same happens here, without AWX's database and without a container
(process isolation off; the execution environment image is tested by test_execution_environment.py). No
Galaxy server is reachable: the project's requirements install the collection from the tarball
``ansible-galaxy collection build`` makes of this tree, as a project that ships it would (``type: file``).

Reused, not copied: the integration harness (Compose projects, the engine and Consul fixtures, free ports)
and the setup.yml deployment of test_roles_infra.py (its names and ports, its cleanup).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import ansible_runner
import pytest
import yaml

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# Fixtures and names the AWX tests import from here (test_roles_infra.py imports these from `conftest` too).
from integration.conftest import (  # noqa: E402,F401  # pylint: disable=unused-import
    ANSIBLE_PLAYBOOK,
    APP_V1,
    APP_V2,
    CONSUL_DNS,
    CONSUL_URL,
    PROXY_IMAGE,
    FlowProject,
    TestProxy,
    assert_molecule_sequence_ran,
    consul_agent,
    docker_client,
    free_ports,
    wait_for,
)
from integration.test_roles_infra import Infra  # noqa: E402

ROOT = os.path.dirname(TESTS_DIR)
ANSIBLE_GALAXY = os.path.join(os.path.dirname(ANSIBLE_PLAYBOOK), "ansible-galaxy")  # ansible-galaxy beside it
PLAYBOOKS = ("setup", "flow", "rollback")
# What AWX puts in env/settings for a job (awx/main/tasks/jobs.py), with a bound on this machine.
JOB_SETTINGS = {"job_timeout": 900, "suppress_ansible_output": True, "pexpect_timeout": 1}
# Variables of the environment that must not reach a job: its options come from the job, not from the caller.
# A user's playbook on the flow role, its own variables passed on, the ones a job leaves out omitted: how
# `flow_scale: "{{ release_scale | default(omit) }}"` failed under ansible-runner (`scale='<<Omit>>' is not valid`).
RELEASE_PLAYBOOK = [{"name": "Release", "hosts": "localhost", "gather_facts": False, "roles": [{
    "role": "dockerflow.flow.flow",
    "vars": {"flow_project_dir": "{{ release_dir }}", "flow_consul_address": "{{ release_consul }}",
             "flow_steps": "{{ release_steps | default(omit) }}", "flow_scale": "{{ release_scale | default(omit) }}"}}]}]
TIMINGS = []  # (job, status, seconds) of every job of the run, printed at its end
NOT_FOR_JOBS = ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN",
                "ANSIBLE_COLLECTIONS_PATH", "PYTHONPATH")


# -- the project, synced once ------------------------------------------------------------------------------------
class AwxProject:
    """A user's project as AWX syncs it: playbooks that import the collection's, and collections/requirements.yml
    naming the collection's tarball; ``sync`` installs the requirements into the project's cache like AWX's
    project update (awx/playbooks/project_update.yml)."""

    def __init__(self, root):
        self.root = str(root)
        self.source = os.path.join(self.root, "project")
        self.cache = os.path.join(self.root, "cache", "requirements_collections")
        self.tarball = None

    def build_collection(self):
        dist = os.path.join(self.root, "dist")
        completed = run([ANSIBLE_GALAXY, "collection", "build", ROOT, "--output-path", dist, "--force"])
        (self.tarball,) = [os.path.join(dist, name) for name in os.listdir(dist) if name.endswith(".tar.gz")]
        return completed

    def write(self):
        os.makedirs(os.path.join(self.source, "collections"))
        with open(os.path.join(self.source, "collections", "requirements.yml"), "w") as handle:
            yaml.safe_dump({"collections": [{"name": self.tarball, "type": "file"}]}, handle)
        for name in PLAYBOOKS:  # the job template's playbook: a file of the project
            with open(os.path.join(self.source, "%s.yml" % name), "w") as handle:
                yaml.safe_dump([{"ansible.builtin.import_playbook": "dockerflow.flow.%s" % name}], handle)
        with open(os.path.join(self.source, "release.yml"), "w") as handle:
            yaml.safe_dump(RELEASE_PLAYBOOK, handle, sort_keys=False)

    def sync(self):
        return run([ANSIBLE_GALAXY, "collection", "install", "-r", "collections/requirements.yml",
                    "--collections-path", self.cache], cwd=self.source,
                   env=dict(job_environment(), ANSIBLE_COLLECTIONS_PATH=self.cache))


def job_environment():
    return {key: value for key, value in os.environ.items() if not key.startswith("FLOW") and key not in NOT_FOR_JOBS}


def run(command, cwd=ROOT, env=None):
    completed = subprocess.run(command, cwd=cwd, env=env or job_environment(), capture_output=True, text=True,
                               timeout=300, check=False)
    assert completed.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(command), completed.stdout, completed.stderr)
    return completed


@pytest.fixture(scope="session")
def awx_project(tmp_path_factory):
    project = AwxProject(tmp_path_factory.mktemp("awx-project"))
    project.build_collection()
    project.write()
    synced = project.sync()
    assert "dockerflow.flow:1.0.0 was installed successfully" in synced.stdout, synced.stdout
    return project


# -- one job -------------------------------------------------------------------------------------------------------
class Job:
    """What AWX keeps of a finished job: runner's status and return code, the job events, the stats."""

    def __init__(self, runner, private_data_dir):
        self.private_data_dir = private_data_dir
        self.ident = runner.config.ident
        self.status = runner.status
        self.rc = runner.rc
        self.events = list(runner.events)
        self.stats = runner.stats or {}
        with open(os.path.join(runner.config.artifact_dir, "stdout")) as handle:
            self.stdout = handle.read()

    def outcomes(self, task):
        """The runner_on_* events of the tasks named ``task``, in order: [(event, res)]."""
        return [(event["event"], event["event_data"].get("res", {})) for event in self.events
                if event["event"].startswith("runner_on_") and event["event"] != "runner_on_start"
                and event["event_data"].get("task") == task]

    def ok(self, task):
        """The result of the one run of ``task``, which must have succeeded."""
        outcomes = self.outcomes(task)
        assert [event for event, _res in outcomes] == ["runner_on_ok"], "%s: %s\n%s" % (
            task, [event for event, _res in outcomes], self.tail())
        return outcomes[0][1]

    def failed(self, task):
        outcomes = self.outcomes(task)
        assert [event for event, _res in outcomes] == ["runner_on_failed"], "%s: %s\n%s" % (
            task, [event for event, _res in outcomes], self.tail())
        return outcomes[0][1]

    def failed_tasks(self):
        return [event["event_data"].get("task") for event in self.events if event["event"] == "runner_on_failed"]

    def task_paths(self):
        return {event["event_data"]["task_path"].rsplit(":", 1)[0] for event in self.events
                if event["event"] == "runner_on_ok" and event["event_data"].get("task_path")}

    def tail(self, chars=6000):
        return self.stdout[-chars:]

    def assert_successful(self):
        assert (self.status, self.rc) == ("successful", 0), "%s, rc %s:\n%s" % (self.status, self.rc, self.tail())
        assert not self.failed_tasks(), self.failed_tasks()
        assert "Traceback" not in self.stdout, self.tail()


class AwxJobs:
    """Jobs of one job template family: each gets a private data directory built the way AWX builds it."""

    def __init__(self, project, root, inventory, container=None):
        self.project = project
        self.root = str(root)
        self.inventory = inventory
        self.container = container  # runner's settings of a job in an execution environment (process isolation)
        self.count = 0

    def prepare(self, playbook, extravars, envvars=None):
        self.count += 1
        private = os.path.join(self.root, "job-%d-%s" % (self.count, playbook))
        shutil.copytree(self.project.source, os.path.join(private, "project"))
        shutil.copytree(self.project.cache, os.path.join(private, "requirements_collections"))
        os.makedirs(os.path.join(private, "inventory"))
        hosts = os.path.join(private, "inventory", "hosts")
        with open(hosts, "w") as handle:  # an AWX inventory: a script that prints it
            handle.write("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(self.inventory))
        os.chmod(hosts, 0o700)
        # In a container, runner mounts the private data directory on /runner (AWX's CONTAINER_ROOT).
        env = {"ANSIBLE_COLLECTIONS_PATH": os.path.join("/runner" if self.container else private, "requirements_collections"),
               "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1", "PYTHONPATH": ""}
        env.update(envvars or {})
        settings = dict(JOB_SETTINGS, **(self.container or {}))
        for name, content in (("extravars", extravars), ("settings", settings), ("envvars", env)):
            path = os.path.join(private, "env", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                yaml.safe_dump(content, handle)
        return private

    def run(self, playbook, extravars, envvars=None, cancel_callback=None, event_handler=None):
        private = self.prepare(playbook, extravars, envvars)
        began = time.monotonic()
        # The ident names the job's container (ansible_runner_<ident>) on the shared engine: unique.
        ident = "dftest-awx-%s" % uuid.uuid4().hex[:8]
        runner = ansible_runner.run(private_data_dir=private, playbook="%s.yml" % playbook, ident=ident, quiet=True,
                                    cancel_callback=cancel_callback, event_handler=event_handler)
        job = Job(runner, private)
        TIMINGS.append((os.path.basename(private), job.status, time.monotonic() - began))
        return job


def local_inventory(python=sys.executable):
    """This machine in both groups of setup.yml, as an AWX inventory would give it (local connection, the Python
    with the modules' libraries: this one, or the execution environment's)."""
    local = {"hosts": ["localhost"]}
    return {"all": {"children": ["proxy", "docker_nodes", "ungrouped"]}, "proxy": local, "docker_nodes": local,
            "_meta": {"hostvars": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": python}}}}


def flow_vars(project, consul_url, consul_dns, proxy_options, **extra):
    """A flow job template's extra vars: the seed's names where playbooks/flow.yml has them, flow_* otherwise;
    the rest of the options from the project's docker-flow.yml. lock_ttl 10 (Consul's minimum) as in
    tests/faults: the lock of a cancelled job is free again within 2 x 10 s + Consul's 5 s lock-delay."""
    extravars = {"project_dir": project.dir, "consul_address": consul_url, "flow_consul_dns": consul_dns,
                 "flow_publish_address": "127.0.0.1", "flow_health_timeout": 60, "flow_lock_ttl": 10,
                 "flow_lock_timeout": 90}
    extravars.update(("flow_" + name, value) for name, value in proxy_options.items())
    extravars.update(extra)
    return extravars


def served(http_port, path):
    """(color, version) a proxy answers with on ``path``; all of 5 answers agree."""
    answers = set()
    url = "http://127.0.0.1:%d%s" % (http_port, path)
    for _request in range(5):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError("%s answered %s" % (url, exc.code)) from exc
        answers.add((body["color"], body["version"]))
    assert len(answers) == 1, answers
    return answers.pop()


def running(project):
    """{color: instances running}."""
    return {color: len(project.running(color)) for color in ("blue", "green") if project.running(color)}


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def app_project(tmp_path, client, consul_url):
    """A Compose project (the app alone) routed at a path of its own by its docker-flow.yml."""
    project = FlowProject(tmp_path, client, {"services": {"app": {"image": APP_V1, "ports": ["8080"]}}},
                          consul_url=consul_url)
    project.path = "/awx-%s" % uuid.uuid4().hex[:6]
    project.write("docker-flow.yml", yaml.safe_dump({"target": "app", "service_path": [project.path],
                                                     "health_path": "/health"}))
    return project


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, awx_project):  # noqa: F811  (the fixture imported above)
    """setup.yml as an AWX job: Consul and the proxy on free ports and names of this run's own (Registrator off:
    flow_deploy registers its instances; tests/integration/test_roles_infra.py tests it)."""
    root = tmp_path_factory.mktemp("awx-jobs")
    deployment = Infra(root)
    deployment.vars.pop("ansible_python_interpreter")  # the inventory's
    deployment.vars["dockerflow_setup_registrator"] = False
    deployment.jobs = AwxJobs(awx_project, root, local_inventory())
    try:
        deployment.setup_job = deployment.jobs.run("setup", deployment.vars)
        yield deployment
    finally:
        deployment.cleanup(docker_client)


@pytest.fixture
def awx_service(tmp_path, docker_client, platform):  # noqa: F811  (the fixture imported above)
    """A project whose flow jobs use the platform's Consul and proxy."""
    project = app_project(tmp_path, docker_client, platform.consul_url)
    yield project
    project.cleanup()


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("AWX jobs: status and wall time")
        for name, status, seconds in TIMINGS:
            terminalreporter.write_line("%-28s %-10s %6.1fs" % (name, status, seconds))
