# -*- coding: utf-8 -*-
"""Compose ``build`` with the Swarm backend on the multi-node cluster (docs/compose-keys.md#build).

The manager builds the image (over TLS, the modules' own connection) from a Dockerfile on the stand-in
app image the nodes pull from the cluster's registry; without the ``registry`` option the deploy is
refused in one line and nothing changes; with it, the image is pushed there as
``<registry>/<project>-app:<release>`` and the release's Swarm service runs it pinned to its digest,
on whichever nodes Swarm picks (they pull it from the registry), and its tasks read a file secret.
"""

from __future__ import annotations

import docker.errors
import pytest
from test_swarm_backend import SwarmService

from conftest import http_get

SECRET = "swarm-built-secret-value"
DOCKERFILE = """\
FROM {base}
ARG VERSION=dev
ENV APP_VERSION=${{VERSION}}
COPY greeting.txt /srv/greeting.txt
"""


class BuiltService(SwarmService):
    """The backend test's service, with an app Flow builds instead of one named by image."""

    def compose(self, image):
        return {
            "services": {
                "app": {"build": {"context": "./src", "args": {"VERSION": image}}, "ports": ["8080"],
                        "healthcheck": {"interval": "2s", "timeout": "20s", "retries": 5},
                        "secrets": ["greeting_secret"]},
            },
            "secrets": {"greeting_secret": {"file": "./secret.txt"}},
        }

    def write_context(self):
        self.project.write_compose(self.compose("s1"))
        self.project.write("src/Dockerfile", DOCKERFILE.format(base=self.cluster.image("app:1")))
        self.project.write("src/greeting.txt", "built on the manager\n")
        self.project.write("secret.txt", SECRET)

    def secret_in_tasks(self):
        """The secret as each running task of the blue release reads it, on its own node."""
        found = []
        for address in self.cluster.nodes:
            for container in self.cluster.engine(address).containers.list(
                    filters={"label": "com.docker.swarm.service.name=%s-blue" % self.service}):
                code, content = container.exec_run(["cat", "/run/secrets/greeting_secret"])
                found.append(content.decode() if code == 0 else "exit %d: %s" % (code, content))
        return found

    def remove_images(self):
        """The built image on every node (the registry's copy goes with the cluster)."""
        for address in self.cluster.nodes:
            engine = self.cluster.engine(address)
            for image in engine.images.list(name="%s/%s-app" % (self.cluster.registry, self.name)):
                try:
                    engine.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    pass  # a task container still stopping: cluster.sh down removes the nodes anyway


@pytest.fixture
def built_service(provisioned_cluster, tmp_path):
    service = BuiltService(provisioned_cluster.cluster, tmp_path)
    (tmp_path / service.name / "src").mkdir()
    service.write_context()
    yield service
    service.cleanup()
    service.remove_images()


def test_swarm_builds_only_with_a_registry_and_runs_the_pushed_image_on_the_nodes(built_service):
    refused = built_service.run("flow_deploy", expect_failure=True)
    assert refused["msg"] == (
        "backend swarm needs the registry option to build the image of app: its nodes pull their images from a "
        "registry (for example registry: 10.0.0.2:5000). Or build and push the image beforehand and name it in image."
    )
    assert built_service.swarm_service("blue") is None and built_service.project.state() is None

    registry = built_service.cluster.registry
    name = "%s/%s-app:1" % (registry, built_service.name)
    deployed = built_service.run("flow_deploy", {"registry": registry, "scale": 2, "health_path": "/health"})
    assert (deployed["color"], deployed["release"]) == ("blue", 1)
    assert any(line.startswith("building %s: Step 1/" % name) for line in deployed["steps"]), deployed["steps"]
    assert any(line.startswith("pushed %s (sha256:" % name) for line in deployed["steps"]), deployed["steps"]
    image = built_service.swarm_service("blue")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(name + "@sha256:"), image
    tasks = built_service.tasks("blue")
    assert len(tasks) == 2
    for address, port in tasks.values():
        status, body = http_get("http://%s:%d/" % (address, port))
        assert (status, body["version"]) == (200, "s1"), body

    assert built_service.secret_in_tasks() == [SECRET, SECRET]  # the built service reads its file secret
    assert SECRET not in str(deployed)

    again = built_service.run("flow_deploy", {"registry": registry, "scale": 2, "health_path": "/health"})
    assert not again["changed"], again["msg"]
