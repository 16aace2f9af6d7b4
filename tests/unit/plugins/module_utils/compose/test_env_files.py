# -*- coding: utf-8 -*-
"""Where variables come from: ``.env``, ``env_files`` (like ``--env-file``) and a service's ``env_file``."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project, read_dotenv
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

APP = "services:\n  app:\n    image: app:${TAG:-latest}\n"


def app_environment(compose, body, environ=None):
    return compose(APP + "".join("    %s\n" % line for line in body.splitlines()), environ=environ).service("app").environment


def test_dotenv_format(write_file):
    path = write_file(
        "x.env",
        "A=plain # a comment\n"
        "B=no#comment\n"
        "C='single $A \\n'\n"
        'D="double $A\\nline \\"q\\" \\$A"\n'
        "E=${A}-${UNSET:-d}\n"
        "F=${INHERITED}\n"
        "INHERITED\n"
        "NOT_SET_ANYWHERE\n"
        "export G=g\n",
    )
    assert read_dotenv(path, {"INHERITED": "from-env"}) == {
        "A": "plain",
        "B": "no#comment",
        "C": "single $A \\n",
        "D": 'double plain\nline "q" $A',
        "E": "plain-d",
        "F": "from-env",
        "INHERITED": "from-env",
        "G": "g",
    }


def test_dotenv_raw_format(write_file):
    path = write_file("raw.env", "A='q' # x\nB=${X}\n")
    assert read_dotenv(path, {"X": "1"}, raw=True) == {"A": "'q' # x", "B": "${X}"}


def test_dotenv_required_variable_names_the_line(write_file):
    path = write_file("x.env", "OK=1\nDB=${DB_URL:?set DB_URL}\n")
    with pytest.raises(FlowError) as info:
        read_dotenv(path, {})
    assert str(info.value) == "%s line 2: variable DB_URL is required: set DB_URL" % path


def test_dotenv_values_are_interpolated_and_environment_wins(compose, write_file):
    write_file(".env", "BASE=1.2\nTAG=${BASE}-slim\nWHO=dotenv\n")
    project = compose(APP + "    environment: [WHO=$WHO]\n", environ={"WHO": "environ"})
    assert project.service("app").image == "app:1.2-slim"
    assert project.service("app").environment == {"WHO": "environ"}


def test_env_files_replace_dotenv(tmp_path, write_file):
    write_file(".env", "TAG=from-dotenv\n")
    write_file("conf/one.env", "TAG=one\nX=1\n")
    write_file("conf/two.env", "TAG=two\n")
    path = write_file("docker-compose.yml", APP + '    environment: ["X=${X:-none}"]\n')
    project = load_project(path, environ={}, env_files=["conf/one.env", "conf/two.env"])
    assert project.service("app").image == "app:two"  # a later file over an earlier one
    assert project.service("app").environment == {"X": "1"}
    assert load_project(path, environ={"TAG": "env"}, env_files=["conf/two.env"]).service("app").image == "app:env"


def test_missing_env_files_entry_fails(tmp_path, write_file):
    path = write_file("docker-compose.yml", APP)
    with pytest.raises(FlowError, match=r"^Cannot read env file %s: " % os.path.join(str(tmp_path), "nope.env")):
        load_project(path, environ={}, env_files=["nope.env"])


def test_env_file_required_false_is_skipped_when_missing(compose, write_file):
    write_file("present.env", "A=1\n")
    body = "env_file:\n  - path: present.env\n    required: false\n  - path: absent.env\n    required: false\n"
    assert app_environment(compose, body) == {"A": "1"}


def test_env_file_required_true_fails_when_missing(compose, tmp_path):
    with pytest.raises(FlowError, match=r"^Cannot read env file %s: " % os.path.join(str(tmp_path), "absent.env")):
        app_environment(compose, "env_file:\n  - path: absent.env\n    required: true\n")


def test_env_file_values_interpolate_from_project_variables(compose, write_file):
    write_file(".env", "REGION=eu\n")
    write_file("app.env", "URL=https://${REGION}.example\nRAW=$$REGION\n")
    assert app_environment(compose, "env_file: app.env\n") == {"URL": "https://eu.example", "RAW": "$REGION"}


def test_env_file_format_raw(compose, write_file):
    write_file("app.env", "URL=${REGION}\n")
    assert app_environment(compose, "env_file:\n  - path: app.env\n    format: raw\n") == {"URL": "${REGION}"}


@pytest.mark.parametrize(
    "body, message",
    [
        ("env_file:\n  - required: false\n", r"env_file: each entry needs a path"),
        ("env_file:\n  - path: a.env\n    required: maybe\n", r"env_file: a\.env: required must be true or false"),
        ("env_file:\n  - path: a.env\n    format: json\n", r"format raw or unset"),
        ("env_file:\n  - path: a.env\n    mode: x\n", r"env_file: key\(s\) mode are not supported"),
    ],
)
def test_env_file_bad_entries(compose, body, message):
    with pytest.raises(FlowError, match=message):
        app_environment(compose, body)
