# -*- coding: utf-8 -*-
"""Compose profiles: a service with profiles runs only when one is active (compose/project.py, the option)."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.config import resolve
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

FILE = """
services:
  app:
    image: app:1
    depends_on: [db]
  db:
    image: db:1
  debug:
    image: tools:1
    profiles: [debug, ops]
  app2:
    image: app:1
    profiles: [beta]
    depends_on: [debug]
"""


def project(write_file, profiles):
    return load_project(write_file("docker-compose.yml", FILE), environ={}, profiles=profiles)


def test_services_without_profiles_always_run(write_file):
    assert project(write_file, None).service("app").image == "app:1"


@pytest.mark.parametrize("parameter", ["target", "side_targets"])
def test_an_inactive_profile_is_one_line_naming_it(write_file, parameter):
    with pytest.raises(FlowError) as info:
        project(write_file, ["beta"]).service("debug", parameter)
    assert str(info.value) == (
        "%s 'debug' is in profile(s) debug, ops, none of them active: activate one with the profiles option (or "
        "COMPOSE_PROFILES)." % parameter
    )


@pytest.mark.parametrize("profiles", [["ops"], ["debug"], ["*"], ["x", "debug"]])
def test_an_active_profile_enables_the_service(write_file, profiles):
    assert project(write_file, profiles).service("debug").image == "tools:1"


def test_profiles_is_an_option_with_compose_profiles_as_its_env(write_file):
    values, sources = resolve({}, ["profiles"], environ={"COMPOSE_PROFILES": "debug,beta"})
    assert (values["profiles"], sources["profiles"]) == (["debug", "beta"], "env:COMPOSE_PROFILES")
    values, _sources = resolve({}, ["profiles"], environ={})
    assert values["profiles"] == []
