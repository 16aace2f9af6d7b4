# -*- coding: utf-8 -*-
"""A service's ``build`` section (compose.build): every Compose form, and each bad input refused in one line
naming the key. What the engine does with it is in backends/test_image_build.py and
tests/integration/test_build.py; when a deploy builds, in steps/test_builds.py.
"""

from __future__ import annotations

import os
import re
import textwrap

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import BuildSpec, ServiceSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def app(compose, body, environ=None, image=False):
    """The spec of service ``app`` with ``body`` under it (and ``image: app:1`` when ``image``)."""
    text = "services:\n  app:\n" + ("    image: app:1\n" if image else "")
    return compose(text + textwrap.indent(textwrap.dedent(body), "    "), environ=environ).service("app")


def test_the_short_form_is_the_context_relative_to_the_compose_file(compose, tmp_path):
    spec = app(compose, "build: ./web\n")
    assert spec.image == "" and spec.build == BuildSpec(context=str(tmp_path / "web"))


def test_the_long_form_reads_every_key_the_engine_honours(compose, tmp_path):
    spec = app(
        compose,
        """\
        build:
          context: backend
          dockerfile: ../backend.Dockerfile
          args: {VERSION: "${TAG:-1.0}", DEBUG: true, FROM_ENV: null, MISSING: null}
          target: prod
          labels: [com.example.team=books]
          network: host
          cache_from: [books/app:cache]
          extra_hosts: ["db.local:10.0.0.7", "cache=10.0.0.8"]
          shm_size: 64m
          no_cache: "true"
          pull: true
          isolation: default
          platforms: [linux/amd64]
          tags: ["books/app:extra"]
        """,
        environ={"FROM_ENV": "yes"},
    )
    assert spec.build == BuildSpec(
        context=str(tmp_path / "backend"),
        dockerfile="../backend.Dockerfile",
        args={"VERSION": "1.0", "DEBUG": "true", "FROM_ENV": "yes"},  # a null arg missing from the variables is left out
        target="prod",
        labels={"com.example.team": "books"},
        network="host",
        cache_from=["books/app:cache"],
        extra_hosts={"db.local": "10.0.0.7", "cache": "10.0.0.8"},
        shm_size=64 * 1024**2,
        no_cache=True,
        pull=True,
        isolation="default",
        platform="linux/amd64",
        tags=["books/app:extra"],
    )


def test_args_in_list_form_take_bare_names_from_the_variables(compose):
    spec = app(compose, "build:\n  args: [A=1, B, C]\n", environ={"B": "from-env"})
    assert spec.build.args == {"A": "1", "B": "from-env"}


def test_context_defaults_to_the_compose_directory_and_urls_and_home_are_kept(compose, tmp_path):
    assert app(compose, "build: {target: x}\n").build.context == str(tmp_path)
    url = "https://github.com/mycompany/webapp.git#main"
    remote = app(compose, "build: %s\n" % url).build
    assert remote.context == url and remote.remote
    assert app(compose, "build: ~/custom\n").build.context == os.path.expanduser("~/custom")


def test_default_network_is_the_engines_and_inline_dockerfiles_are_kept(compose):
    build = app(compose, "build:\n  network: default\n  dockerfile_inline: |\n    FROM base\n").build
    assert build.network is None and build.dockerfile_inline == "FROM base\n"


def test_image_and_build_keep_the_image_and_pull_policy_build_asks_to_build(compose):
    spec = app(compose, "build: .\npull_policy: build\n", image=True)
    assert (spec.image, spec.pull_policy, spec.build is not None) == ("app:1", "build", True)


def test_the_build_section_does_not_change_the_config_hash():
    """The deploy step adds the digest of the build's inputs (backends.build_context) instead."""
    plain = ServiceSpec(name="app", image="")
    assert plain.config_hash() == ServiceSpec(name="app", image="", build=BuildSpec(context="/srv/a")).config_hash()


@pytest.mark.parametrize(
    "body, message",
    [
        ("build: [a]\n", "service app: build must be a path (the context) or a mapping."),
        ("build: {context: ''}\n", "service app: build.context='' is not valid: use a non-empty string."),
        ("build: {contxt: .}\n", "service app: build: key(s) contxt are not supported. Supported: args, cache_from, "),
        ("build: {args: A=1}\n", "service app: build.args must be a list (K=V) or a mapping."),
        ("build: {target: [a]}\n", "service app: build.target=['a'] is not valid: use a non-empty string."),
        ("build: {cache_from: [{a: 1}]}\n", "service app: build.cache_from must be a list of strings."),
        ("build: {extra_hosts: [nohost]}\n", "service app: build.extra_hosts: 'nohost' is not HOST=IP (or HOST:IP)."),
        ("build: {shm_size: lots}\n", "service app: build.shm_size='lots' is not a size"),
        ("build: {no_cache: maybe}\n", "service app: build.no_cache='maybe' is not a boolean: use true or false."),
        ("build: {dockerfile: a, dockerfile_inline: FROM x}\n",
         "service app: build.dockerfile_inline must be a string, and cannot be combined with dockerfile."),
        ("build: {platforms: [linux/amd64, linux/arm64]}\n",
         "service app: build.platforms lists 2 platforms: a multi-platform build needs BuildKit"),
        ("build: {ssh: [default]}\n", "service app: build.ssh needs BuildKit (an SSH agent for the build), which the "
                                      "Docker SDK's build call cannot use: remove it, or build the image beforehand "
                                      "and name it in image."),
        ("build: {secrets: [token]}\n", "service app: build.secrets needs BuildKit (build secrets)"),
        ("build: {additional_contexts: {a: ./a}}\n", "service app: build.additional_contexts needs BuildKit"),
        ("build: {ulimits: {nproc: 1}}\n",
         "service app: build.ulimits cannot be sent by the Docker SDK's build call, "
         "which has no ulimits argument: remove it, or build the image beforehand"),
        ("image: ''\nbuild: .\n", "service app: image='' is not valid: use an image name, or leave it out to build one."),
        ("restart: always\n", "service app has neither image nor build."),
        ("image: a\npull_policy: build\n",
         "service app: pull_policy build needs a build section (what to build the image from)."),
    ],
)
def test_bad_build_input_is_refused_in_one_line_naming_the_key(compose, body, message):
    with pytest.raises(FlowError, match=re.escape(message)) as info:
        app(compose, body)
    assert "\n" not in str(info.value)
