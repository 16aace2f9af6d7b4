# -*- coding: utf-8 -*-
"""Compose ``build`` on backend container, through the real flow_deploy, flow_stop_old and flow_rollback modules.

The project's Dockerfile builds offline on the stand-in app image (``FROM dockerflow-test/app:1``,
no network needed): a multi-stage ``target``, an ``ARG`` from ``args`` (interpolated from the
project's ``.env``), a ``LABEL`` from ``labels``, a ``COPY`` of a file of the context. The built
service reads a file secret. Each release runs the image ``<project>-app:<release>``, a rollback
runs release 1's image again, an unchanged rerun builds nothing, and a failing ``RUN`` fails the
deploy with that step's output and changes nothing. The images a test builds are removed after it.
"""

from __future__ import annotations

import os

import docker
import pytest

from conftest import FlowProject

SECRET = "built-and-secret-value"
DOCKERFILE = """\
FROM dockerflow-test/app:1 AS app
ARG VERSION=dev
ENV APP_VERSION=${VERSION}
LABEL org.example.stage=app
COPY greeting.txt /srv/greeting.txt
RUN echo "checked the greeting: $(cat /srv/greeting.txt)"

FROM app AS broken
RUN echo "the check of the broken stage runs" && echo "and then fails on purpose" && false
"""
COMPOSE = {
    "services": {
        "app": {
            "build": {
                "context": "./src",
                "target": "app",
                "args": ["VERSION=${APP_BUILD_VERSION:-unset}"],
                "labels": {"org.example.built-by": "flow-test"},
            },
            "ports": ["8080"],
            "secrets": ["greeting_secret"],
        },
    },
    "secrets": {"greeting_secret": {"file": "./secret.txt"}},
}


@pytest.fixture
def built_project(docker_client, make_project):
    """A project that builds its app, with its images removed after the test (after its containers)."""
    made: list[FlowProject] = []

    def factory(compose=None):
        project = make_project(compose or COMPOSE)
        project.write(".env", "APP_BUILD_VERSION=b1\n")
        project.write("secret.txt", SECRET)
        _write_context(project)
        made.append(project)
        return project

    yield factory
    for project in made:
        project.cleanup()  # the containers first: an image in use cannot go
        for image in docker_client.images.list(name="%s-app" % project.name):
            docker_client.images.remove(image.id, force=True)


def _write_context(project):
    os.makedirs(os.path.join(project.dir, "src"), exist_ok=True)
    project.write("src/Dockerfile", DOCKERFILE)
    project.write("src/greeting.txt", "hello from the build context\n")


def image_of(container):
    container.reload()
    return container.attrs["Config"]["Image"]


def secret_in(container):
    code, content = container.exec_run(["cat", "/run/secrets/greeting_secret"])
    assert code == 0, content
    return content.decode()


def test_each_release_runs_its_own_built_image_and_a_rollback_runs_the_first_again(built_project):
    project = built_project()
    name = project.name + "-app"

    first = project.run("flow_deploy")
    assert (first["changed"], first["color"], first["release"]) == (True, "blue", 1)
    assert any(line.startswith("building %s:1: Step 1/" % name) for line in first["steps"]), first["steps"]
    blue = project.running("blue")[0]
    assert image_of(blue) == name + ":1"
    assert project.answer(blue)["version"] == "b1"  # the ARG, from args interpolated from .env
    assert secret_in(blue) == SECRET  # the built service reads its file secret
    code, greeting = blue.exec_run(["cat", "/srv/greeting.txt"])  # the COPY of the context
    assert (code, greeting.decode()) == (0, "hello from the build context\n")
    image = project.docker.images.get(name + ":1")
    assert (image.labels["org.example.built-by"], image.labels["org.example.stage"]) == ("flow-test", "app")
    assert SECRET not in str(first)

    again = project.run("flow_deploy")  # the same inputs: no build, no release
    assert not again["changed"] and "already runs this configuration" in again["msg"]
    assert not any("build" in line for line in again["steps"]), again["steps"]

    project.write(".env", "APP_BUILD_VERSION=b2\n")
    second = project.run("flow_deploy")
    assert (second["changed"], second["color"], second["release"]) == (True, "green", 2)
    green = project.running("green")[0]
    assert image_of(green) == name + ":2" and project.answer(green)["version"] == "b2"
    assert secret_in(green) == SECRET

    project.run("flow_stop_old")  # nothing routes it: green becomes live, blue is stopped and kept
    assert project.running("blue") == []
    rolled = project.run("flow_rollback")
    assert (rolled["color"], rolled["release"]) == ("blue", 1)
    blue = project.running("blue")[0]
    assert image_of(blue) == name + ":1" and project.answer(blue)["version"] == "b1"


def test_check_mode_says_it_would_build_and_builds_nothing(built_project):
    project = built_project()
    predicted = project.run("flow_deploy", check=True)
    assert predicted["changed"]
    assert "would build image %s-app:1 of app from %s/src" % (project.name, project.dir) in predicted["steps"]
    assert project.docker.images.list(name="%s-app" % project.name) == []
    assert project.containers() == [] and project.state() is None


def test_a_failing_run_step_fails_the_deploy_with_its_output_and_changes_nothing(built_project):
    project = built_project()
    project.run("flow_deploy")
    live = project.running("blue")[0]
    before = project.snapshot()

    compose = dict(COMPOSE, services={"app": dict(COMPOSE["services"]["app"],
                                                  build=dict(COMPOSE["services"]["app"]["build"], target="broken"))})
    project.write_compose(compose)
    failed = project.run("flow_deploy", expect_failure=True)
    message = failed["msg"]
    assert message.startswith("Building image %s-app:2 failed at Step " % project.name), message
    assert "RUN echo \"the check of the broken stage runs\"" in message
    assert "returned a non-zero code: 1" in message
    assert "the check of the broken stage runs | and then fails on purpose" in message
    assert "Nothing was deployed." in message
    assert any("and then fails on purpose" in line for line in failed["logs"])
    assert project.snapshot() == before  # no container created, no state written
    assert project.answer(live)["version"] == "b1"
    with pytest.raises(docker.errors.ImageNotFound):
        project.docker.images.get("%s-app:2" % project.name)
