# -*- coding: utf-8 -*-
"""When a deploy builds (steps.builds): which services, under which names, in which order against the
rest of the deploy, what a failed build leaves, what check mode says, and when nothing is built.

Docker and Consul are the in-memory stand-ins of tests/unit/fakes.py (the build is a record there), in
test_flow's World; tests/integration/test_build.py builds on the real engine.
"""

from __future__ import annotations

import pytest
from test_flow import SERVICE
from test_flow import World as FlowWorld

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

COMPOSE = """
services:
  app:
    build:
      context: ./app
      args: ["VERSION=${VERSION:-1}"]
    ports: ["8080"]
    depends_on: [db, cache]
  db:
    build: ./db
  cache:
    image: books/cache:1
    build: ./cache
"""


class World(FlowWorld):
    """test_flow's world (a fake engine and Consul, flows run against them) with a project that builds."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        for name in ("app", "db", "cache"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "Dockerfile").write_text("FROM base\nRUN make\n")
        self.write(COMPOSE)

    def write(self, text):
        path = self.tmp_path / "docker-compose.yml"
        path.write_text(text)
        self.compose_path = str(path)

    def deploy(self, check_mode=False, **options):
        return self.run("deploy", check_mode=check_mode, **options)

    def images(self):
        return [i.image for i in self.backend.list_instances(SERVICE)]


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_build_alone_is_built_per_release_before_side_targets_and_instances(world):
    result = world.deploy()
    assert result["release"] == 1
    # the side target db builds under its stable name, the cache (image and build, not asked) does not build
    assert world.backend.events == [("build", "books-app:1"), ("build", "books-db:latest"),
                                    ("side", "books-db:latest"), ("side", "books/cache:1"), ("run", "books-app:1")]
    assert "building books-app:1: Step 1/2 : FROM base" in result["steps"]
    assert world.consul.document(SERVICE)["colors"]["blue"]["image"] == "books-app:1"
    # the release records the ID the engine gives the image it built
    assert world.consul.document(SERVICE)["releases"][0]["image_id"] == world.backend.resolve_image("books-app:1", "never")[0]


def test_the_same_inputs_again_build_nothing_and_new_inputs_build_the_next_release(world, tmp_path):
    world.deploy()
    again = world.deploy()
    assert not again["changed"] and world.backend.built == ["books-app:1", "books-db:latest"]
    (tmp_path / "app" / "Dockerfile").write_text("FROM base\nRUN make all\n")
    second = world.deploy()
    assert (second["release"], second["color"]) == (2, "green")
    # the side target's image is the same build: reused, not built again
    assert world.backend.built == ["books-app:1", "books-db:latest", "books-app:2"]
    assert "image books-db:latest of db is built already from the same inputs: reusing it" in second["steps"]
    assert sorted(world.images()) == ["books-app:1", "books-app:2"]


def test_an_interpolated_build_arg_is_a_new_build(world):
    world.deploy()
    world.write(COMPOSE.replace("${VERSION:-1}", "2"))
    assert world.deploy()["release"] == 2 and world.backend.built[-1] == "books-app:2"


def test_a_failed_build_changes_nothing_and_the_live_color_keeps_serving(world, tmp_path):
    world.deploy()
    world.go_live("blue")
    state_before = world.consul.document(SERVICE)
    events = list(world.backend.events)
    world.backend.fail_build = True
    (tmp_path / "app" / "Dockerfile").write_text("FROM base\nRUN make broken\n")
    with pytest.raises(FlowError) as info:
        world.deploy()
    assert info.value.msg.startswith("Building image books-app:2 failed at Step 2/2 : RUN make: ")
    assert info.value.msg.endswith(" Nothing was deployed. Live color blue keeps serving.")
    assert info.value.details["logs"][-1] == "make: *** No rule to make target 'all'."
    assert world.backend.events == events  # no side target started, no instance created
    assert world.consul.document(SERVICE) == state_before
    assert world.images() == ["books-app:1"]


def test_a_retried_release_reuses_the_image_it_built(world, tmp_path):
    world.backend.images["books-app:1"] = "stale"  # a build of another attempt of release 1, other inputs
    world.deploy()
    assert world.backend.built[0] == "books-app:1"  # built again: its digest was not this build's
    digest = world.backend.images["books-app:1"]
    world.consul.kv.entries.clear()  # as if release 1 had failed after its build: the next attempt is release 1 again
    world.backend.instances.clear()
    world.backend.built.clear()
    result = world.deploy()
    assert result["release"] == 1 and "books-app:1" not in world.backend.built
    assert world.backend.images["books-app:1"] == digest
    assert "image books-app:1 of app is built already from the same inputs: reusing it" in result["steps"]


def test_check_mode_says_what_it_would_build_and_builds_nothing(world):
    result = world.deploy(check_mode=True)
    assert "would build image books-app:1 of app from %s/app" % world.tmp_path in result["steps"]
    assert "would build image books-db:latest of db from %s/db" % world.tmp_path in result["steps"]
    assert world.backend.events == [] and world.consul.document(SERVICE) is None


@pytest.mark.parametrize("how", [{"build": True}, {"compose": "pull_policy: build"}])
def test_image_and_build_builds_under_the_image_name_when_asked(world, how):
    if "compose" in how:
        world.write(COMPOSE.replace("    build: ./cache\n", "    build: ./cache\n    %s\n" % how["compose"]))
    world.deploy(**{key: value for key, value in how.items() if key == "build"})
    assert "books/cache:1" in world.backend.built
    assert world.backend.pulled == []  # what is built is not pulled


def test_pull_side_targets_does_not_pull_what_it_built(world):
    world.deploy(pull_side_targets=True)
    assert world.backend.pulled == ["books/cache:1"]


def test_with_a_registry_the_images_are_named_under_it_and_pushed(world):
    world.deploy(registry="10.0.0.2:5000/team/")
    assert world.backend.events[:4] == [
        ("build", "10.0.0.2:5000/team/books-app:1"), ("push", "10.0.0.2:5000/team/books-app:1"),
        ("build", "10.0.0.2:5000/team/books-db:latest"), ("push", "10.0.0.2:5000/team/books-db:latest"),
    ]
    assert world.images() == ["10.0.0.2:5000/team/books-app:1"]


def test_swarm_without_a_registry_is_refused_before_anything_changes(world):
    world.backend.builds_need_registry = True
    with pytest.raises(FlowError) as info:
        world.deploy()
    assert info.value.msg == (
        "backend swarm needs the registry option to build the image of app: its nodes pull their images from a "
        "registry (for example registry: 10.0.0.2:5000). Or build and push the image beforehand and name it in image."
    )
    assert world.backend.events == [] and world.consul.document(SERVICE) is None
    world.deploy(registry="10.0.0.2:5000")
    assert ("push", "10.0.0.2:5000/books-app:1") in world.backend.events


@pytest.mark.parametrize("registry", ["http://10.0.0.2:5000", "10.0.0.2:5000/Team", "host:port", "a b"])
def test_a_bad_registry_is_refused_naming_it(world, registry):
    with pytest.raises(FlowError, match=r"^registry=%r is not valid: use HOST\[:PORT\]\[/PATH\], for example "
                                        r"10\.0\.0\.2:5000\.$" % registry):
        world.deploy(registry=registry)
    assert world.backend.events == []


def test_a_missing_context_fails_before_the_lock_naming_the_service(world, tmp_path):
    world.write(COMPOSE.replace("./db", "./nothing-here"))
    with pytest.raises(FlowError, match=r"docker-compose\.yml: service db: build\.context .*/nothing-here is not a "
                                        r"directory\.$"):
        world.deploy(check_mode=True)
    assert world.backend.events == []
