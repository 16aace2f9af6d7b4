# -*- coding: utf-8 -*-
"""The execution environment: ``ansible-builder create`` checks execution-environment.yml (the user-facing
definition, on a standard EE base) and its local variant, build-ee.sh builds the variant offline, and a flow
job runs inside it as AWX runs one: runner's process isolation with docker, the engine's socket mounted, the
host's network for the harness's Consul (127.0.0.1:8500) and a proxy of the test's own. Cancelling a job
there kills its container, as AWX does, and the next job converges."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import (
    APP_V2,
    CONSUL_DNS,
    CONSUL_URL,
    ROOT,
    AwxJobs,
    TestProxy,
    app_project,
    flow_vars,
    local_inventory,
    running,
    served,
    wait_for,
)

AWX_DIR = os.path.dirname(os.path.abspath(__file__))
DEFINITION = os.path.join(ROOT, "execution-environment.yml")
LOCAL_DEFINITION = os.path.join(AWX_DIR, "execution-environment.local.yml")
EE_IMAGE = os.environ.get("DOCKERFLOW_TEST_EE_IMAGE", "dockerflow-test/ee:local")
ANSIBLE_BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
DEPLOY = "Deploy: run the target as the next color beside the live one, wait until healthy, register it"
SWITCH = "Proxy: route the service to the newest release in the proxy and make it live"


def create(definition, context):
    return subprocess.run([ANSIBLE_BUILDER, "create", "-f", definition, "-c", str(context),
                           "--output-filename", "Dockerfile"], capture_output=True, text=True, timeout=120, check=False)


def library_names(definition):
    with open(definition) as handle:
        python = yaml.safe_load(handle)["dependencies"]["python"]
    return sorted(re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].lower() for requirement in python)


def test_ansible_builder_accepts_the_definition_and_refuses_a_broken_one(tmp_path):
    made = create(DEFINITION, tmp_path / "context")
    assert made.returncode == 0, made.stdout + made.stderr
    dockerfile = (tmp_path / "context" / "Dockerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in dockerfile
    assert "ansible-core>=2.19,<2.20 ansible-runner" in dockerfile
    requirements = (tmp_path / "context" / "_build" / "requirements.txt").read_text().split()
    assert sorted(re.split(r"[<>=]", line)[0].lower() for line in requirements) == library_names(DEFINITION)
    collections = yaml.safe_load((tmp_path / "context" / "_build" / "requirements.yml").read_text())["collections"]
    assert [collection["name"] for collection in collections] == ["community.crypto"], "the acme role's modules"

    with open(DEFINITION) as handle:
        broken = yaml.safe_load(handle)
    broken["dependencies"]["python_interpreter"]["python_pth"] = broken["dependencies"]["python_interpreter"].pop("python_path")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    refused = create(str(path), tmp_path / "broken-context")
    assert refused.returncode != 0 and "python_pth" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_the_local_variant_has_the_same_libraries(tmp_path):
    assert library_names(LOCAL_DEFINITION) == library_names(DEFINITION)
    made = create(LOCAL_DEFINITION, tmp_path / "context")
    assert made.returncode == 0, made.stdout + made.stderr


@pytest.fixture(scope="module")
def ee_image(docker_client):
    """build-ee.sh: built once, then kept while its inputs are the same."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    built = subprocess.run([os.path.join(AWX_DIR, "build-ee.sh")], capture_output=True, text=True, env=env,
                           timeout=1800, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    return EE_IMAGE


@pytest.fixture
def ee_jobs(tmp_path, ee_image, awx_project):
    return AwxJobs(awx_project, tmp_path / "jobs", local_inventory("{{ ansible_playbook_python }}"), container={
        "process_isolation": True, "process_isolation_executable": "docker", "container_image": ee_image,
        # As AWX: root in the container (the private data directory is the host's); the engine's socket and the
        # host's network are this test's (the engine, Consul on 127.0.0.1:8500, the proxy's ports).
        "container_options": ["--user=root", "--network=host"],
    })


@pytest.fixture
def ee_proxy(docker_client):
    proxy = TestProxy(docker_client)
    yield proxy
    proxy.cleanup()


def test_flow_jobs_in_the_execution_environment_and_a_cancelled_one(tmp_path, docker_client, ee_jobs, ee_proxy):
    project = app_project(tmp_path, docker_client, CONSUL_URL)
    mounts = ["/var/run/docker.sock:/var/run/docker.sock", "%s:%s" % (project.dir, project.dir)]
    ee_jobs.container["container_volume_mounts"] = mounts
    try:
        extravars = flow_vars(project, CONSUL_URL, CONSUL_DNS, ee_proxy.options, flow="deploy,proxy")
        first = ee_jobs.run("flow", extravars)
        first.assert_successful()
        assert first.ok(DEPLOY)["color"] == "blue" and first.ok(SWITCH)["live_color"] == "blue"
        assert served(ee_proxy.http_port, project.path) == ("blue", "1")
        assert "/runner/requirements_collections/ansible_collections/dockerflow/flow/roles/flow/tasks" in \
            "".join(first.task_paths()), "the job ran in the container, from the synced collection"

        # Cancelled while the deploy waits at its first step: runner kills the job's container, and the module in it.
        project.set_image(APP_V2)
        pause_file = os.path.join(project.dir, "paused")
        cancelled = ee_jobs.run(
            "flow", dict(extravars, flow="deploy,proxy,stop-old"),
            envvars={"DOCKERFLOW_TEST_PAUSE_AT": "deploy:started", "DOCKERFLOW_TEST_PAUSE_FILE": pause_file},
            cancel_callback=lambda: os.path.exists(pause_file))
        assert (cancelled.status, cancelled.rc) == ("canceled", 254), cancelled.tail()
        assert cancelled.outcomes(DEPLOY) == []
        wait_for(lambda: not job_containers(docker_client, cancelled), timeout=30, what="the job's container to go")
        os.remove(pause_file)
        assert served(ee_proxy.http_port, project.path) == ("blue", "1"), "the live release serves on"

        rerun = ee_jobs.run("flow", dict(extravars, flow="deploy,proxy,stop-old"))
        rerun.assert_successful()
        deployed = rerun.ok(DEPLOY)
        assert [w for w in deployed.get("warnings", []) if "without releasing it" in w], deployed.get("warnings")
        assert served(ee_proxy.http_port, project.path) == (deployed["color"], "2")
        assert running(project) == {deployed["color"]: 1}
    finally:
        project.cleanup()
        shutil.rmtree(project.dir, ignore_errors=True)  # files the container wrote as root


def job_containers(client, job):
    return [c.name for c in client.containers.list(all=True, filters={"name": "ansible_runner_%s" % job.ident})]
