# -*- coding: utf-8 -*-
"""Building and pushing images (backends.image_build) and the digest of a build's inputs (backends.build_context).

The engine is a stand-in here that answers the Docker SDK calls with the output shapes the classic
builder and the registry push stream (copied from real runs of this engine, 20.10): what is
tested is how Flow reads them. tests/integration/test_build.py builds on the real engine.
"""

from __future__ import annotations

import os

import docker.errors
import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.build_context import build_digest
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.image_build import follow_build, follow_push
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_BUILD_DIGEST

BUILT = [
    {"stream": "Step 1/3 : FROM dockerflow-test/app:1"},
    {"stream": "\n"},
    {"stream": " ---> cfd7a23e180d\n"},
    {"stream": "Step 2/3 : COPY greeting.txt /srv/\n"},
    {"stream": " ---> 6633af4fe618\n"},
    {"stream": "Step 3/3 : LABEL dockerflow.build-digest=abc\n"},
    {"stream": " ---> Running in 1c9e4d847065\n"},
    {"stream": "Removing intermediate container 1c9e4d847065\n"},
    {"aux": {"ID": "sha256:46632047cbc6d1c7a2bb"}},
    {"stream": "Successfully built 46632047cbc6\n"},
    {"stream": "Successfully tagged books-app:3\n"},
]
FAILED = BUILT[:4] + [
    {"stream": " ---> Running in 9a8b7c6d5e4f\n"},
    {"stream": "npm ERR! missing script: build\n"},
    {"stream": "npm ERR! A complete log of this run can be found in /root/.npm/_logs/x.log\n"},
    {"errorDetail": {"code": 1, "message": "The command '/bin/sh -c npm run build' returned a non-zero code: 1"},
     "error": "The command '/bin/sh -c npm run build' returned a non-zero code: 1"},
]


def lines():
    seen = []
    return seen, seen.append


def test_a_build_reports_each_step_and_returns_the_image_id():
    seen, progress = lines()
    assert follow_build(iter(BUILT), "books-app:3", progress) == "sha256:46632047cbc6d1c7a2bb"
    assert seen == [
        "building books-app:3: Step 1/3 : FROM dockerflow-test/app:1",
        "building books-app:3: Step 2/3 : COPY greeting.txt /srv/",
        "building books-app:3: Step 3/3 : LABEL dockerflow.build-digest=abc",
        "built books-app:3 (46632047cbc6)",
    ]


def test_a_failed_step_is_one_line_with_its_output_and_the_build_log_is_in_logs():
    seen, progress = lines()
    with pytest.raises(FlowError) as info:
        follow_build(iter(FAILED), "books-app:3", progress)
    assert info.value.msg == (
        "Building image books-app:3 failed at Step 2/3 : COPY greeting.txt /srv/: the command returned a non-zero "
        "code: 1. Its last lines: npm ERR! missing script: build | npm ERR! A complete log of this run can be found in "
        "/root/.npm/_logs/x.log."
    )
    assert info.value.details["logs"][-2:] == [
        "npm ERR! A complete log of this run can be found in /root/.npm/_logs/x.log",
        "The command '/bin/sh -c npm run build' returned a non-zero code: 1",
    ]
    assert seen[-1] == "building books-app:3: Step 2/3 : COPY greeting.txt /srv/"


def test_an_error_before_any_step_names_the_start():
    with pytest.raises(FlowError, match=r"^Building image a:1 failed at the start: Cannot locate specified "
                                        r"Dockerfile: Dockerfile\.$"):
        follow_build(iter([{"error": "Cannot locate specified Dockerfile: Dockerfile"}]), "a:1", lambda line: None)


PUSHED = [
    {"status": "The push refers to repository [10.0.0.2:5000/books-app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "a1"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 1024}, "id": "a1"},
    {"status": "Pushed", "progressDetail": {}, "id": "a1"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "b2"},
    {"status": "3: digest: sha256:feed size: 739"},
    {"progressDetail": {}, "aux": {"Tag": "3", "Digest": "sha256:feed", "Size": 739}},
]


def test_a_push_reports_its_layers_and_digest():
    seen, progress = lines()
    follow_push(iter(PUSHED), "10.0.0.2:5000/books-app:3", progress)
    assert seen == [
        "pushing 10.0.0.2:5000/books-app:3: layer a1 pushed",
        "pushing 10.0.0.2:5000/books-app:3: layer b2 layer already exists",
        "pushed 10.0.0.2:5000/books-app:3 (sha256:feed)",
    ]


@pytest.mark.parametrize(
    "error, message",
    [
        ("Get \"https://10.0.0.2:5000/v2/\": http: server gave HTTP response to HTTPS client",
         "Pushing image 10.0.0.2:5000/books-app:3 failed: Get \"https://10.0.0.2:5000/v2/\": http: server gave HTTP "
         "response to HTTPS client (the engine speaks HTTPS to registries: add this one to its insecure-registries)."),
        ("Get \"http://10.0.0.2:5000/v2/\": dial tcp 10.0.0.2:5000: connect: connection refused",
         "Pushing image 10.0.0.2:5000/books-app:3 failed: Get \"http://10.0.0.2:5000/v2/\": dial tcp 10.0.0.2:5000: "
         "connect: connection refused."),
    ],
)
def test_a_failed_push_is_one_line(error, message):
    with pytest.raises(FlowError) as info:
        follow_push(iter(PUSHED[:2] + [{"error": error, "errorDetail": {"message": error}}]),
                    "10.0.0.2:5000/books-app:3", lambda line: None)
    assert info.value.msg == message


class FakeAPI:
    """The SDK calls ImageBuilds makes, recorded."""

    base_url = "http+docker://localhost"

    def __init__(self, output=None, images=None):
        self.output, self.images, self.calls = BUILT if output is None else output, dict(images or {}), []

    def build(self, **kwargs):
        self.calls.append(("build", kwargs))
        if kwargs["dockerfile"] and os.path.isabs(kwargs["dockerfile"]):
            with open(kwargs["dockerfile"], encoding="utf-8") as handle:  # the SDK reads it while building the tar
                self.calls.append(("inline", handle.read()))
        return iter(self.output)

    def inspect_image(self, name):
        if name not in self.images:
            raise docker.errors.ImageNotFound("no such image: %s" % name)
        return self.images[name]

    def tag(self, image, repository, tag):
        self.calls.append(("tag", image, repository, tag))

    def push(self, repository, tag=None, stream=False, decode=False):
        self.calls.append(("push", repository, tag))
        return iter(PUSHED)


def backend(api):
    engine = ContainerBackend.__new__(ContainerBackend)
    engine.client, engine.api, engine.base_url = None, api, api.base_url
    return engine


def test_build_image_passes_the_build_section_to_the_sdk_and_tags_the_extra_tags():
    api = FakeAPI()
    build = BuildSpec(context="/srv/app", dockerfile="ops/Dockerfile", args={"V": "1"}, target="prod",
                      labels={"team": "books"}, network="host", cache_from=["books/app:cache"],
                      extra_hosts={"db": "10.0.0.7"}, shm_size=1024, no_cache=True, pull=True, platform="linux/amd64",
                      tags=["books/app:extra"])
    assert backend(api).build_image(build, "books-app:3", "d1g", lambda line: None) == "sha256:46632047cbc6d1c7a2bb"
    (_build, kwargs), tag = api.calls
    assert kwargs == dict(
        path="/srv/app", tag="books-app:3", dockerfile="ops/Dockerfile", buildargs={"V": "1"}, target="prod",
        labels={"team": "books", LABEL_BUILD_DIGEST: "d1g"}, network_mode="host", cache_from=["books/app:cache"],
        extra_hosts={"db": "10.0.0.7"}, shmsize=1024, nocache=True, pull=True, isolation=None, platform="linux/amd64",
        rm=True, forcerm=True, decode=True,
    )
    assert tag == ("tag", "sha256:46632047cbc6d1c7a2bb", "books/app", "extra")


def test_an_inline_dockerfile_goes_through_a_temporary_file_that_is_removed():
    api = FakeAPI()
    backend(api).build_image(BuildSpec(context="/srv/app", dockerfile_inline="FROM base\n"), "a:1", "d", print)
    (_build, kwargs), inline = api.calls
    assert inline == ("inline", "FROM base\n") and not os.path.exists(kwargs["dockerfile"])


def test_built_digest_reads_the_label_and_push_streams(capsys):
    api = FakeAPI(images={"a:1": {"Config": {"Labels": {LABEL_BUILD_DIGEST: "d1g"}}}, "b:1": {"Config": {}}})
    engine = backend(api)
    assert (engine.built_digest("a:1"), engine.built_digest("b:1"), engine.built_digest("c:1")) == ("d1g", None, None)
    seen, progress = lines()
    engine.push_image("10.0.0.2:5000/books-app:3", progress)
    assert api.calls == [("push", "10.0.0.2:5000/books-app", "3")] and seen[-1].startswith("pushed ")


# -- the digest of a build's inputs ------------------------------------------------------------------------------
@pytest.fixture
def context(tmp_path):
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM base\nCOPY . /app\n")
    (root / "src" / "main.py").write_text("print(1)\n")
    (root / "notes.log").write_text("ignored\n")
    (root / ".dockerignore").write_text("# logs\n*.log\n")
    return root


def digest(root, **options):
    return build_digest(BuildSpec(context=str(root), **options), "service app: build")


def test_the_digest_follows_contents_and_options_not_times_or_ignored_files(context):
    first = digest(context)
    os.utime(context / "src" / "main.py", (1, 1))
    (context / "notes.log").write_text("changed, but .dockerignore leaves it out\n")
    assert digest(context) == first
    (context / "src" / "main.py").write_text("print(2)\n")
    changed = digest(context)
    assert changed != first
    assert digest(context, args={"V": "2"}) != changed
    os.chmod(context / "src" / "main.py", 0o755)
    assert digest(context) != changed


def test_the_digest_does_not_depend_on_where_the_project_is(context, tmp_path):
    first = digest(context)
    moved = tmp_path / "elsewhere"
    context.rename(moved)
    assert digest(moved) == first


def test_a_dockerfile_outside_the_context_counts_and_a_url_context_is_its_url(context, tmp_path):
    outside = tmp_path / "app.Dockerfile"
    outside.write_text("FROM base\n")
    first = digest(context, dockerfile="../app.Dockerfile")
    outside.write_text("FROM base\nRUN true\n")
    assert digest(context, dockerfile="../app.Dockerfile") != first
    url = "https://github.com/mycompany/webapp.git#v1"
    assert build_digest(BuildSpec(context=url), "b") == build_digest(BuildSpec(context=url), "b")
    assert build_digest(BuildSpec(context=url), "b") != build_digest(BuildSpec(context=url[:-1] + "2"), "b")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"context": "missing"}, "service app: build.context %s/missing is not a directory."),
        ({"dockerfile": "nope.Dockerfile"}, "service app: build.dockerfile: the Dockerfile %s/ctx/nope.Dockerfile does "
                                            "not exist."),
    ],
)
def test_a_missing_context_or_dockerfile_fails_naming_the_key(context, tmp_path, change, message):
    root = tmp_path / change.pop("context") if "context" in change else context
    with pytest.raises(FlowError) as info:
        digest(root, **change)
    assert info.value.msg == message % tmp_path


def test_an_engine_error_while_looking_for_a_built_image_is_one_line():
    class Refusing(FakeAPI):
        def inspect_image(self, name):
            raise docker.errors.APIError("500 Server Error: the engine is busy")

    with pytest.raises(FlowError, match=r"^Inspecting image a:1 failed: 500 Server Error: the engine is busy\.$"):
        backend(Refusing()).built_digest("a:1")
