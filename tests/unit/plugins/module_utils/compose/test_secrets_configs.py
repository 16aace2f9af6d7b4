# -*- coding: utf-8 -*-
"""Top-level secrets and configs, and services that mount them (compose/resources.py, compose/mounts.py)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.resources import file_data
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

SECRET = "s3cr3t-value-never-shown"


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(compose, write_file, service_body, top, environ=None):
    write_file("db_password.txt", SECRET, dedent=False)
    text = "services:\n  app:\n    image: app:1\n" + service_body + top
    return compose(text, environ=environ)


TOP = """secrets:
  db_password: {file: ./db_password.txt}
  api_key: {environment: API_KEY}
configs:
  app_conf: {content: "port=8080"}
  nginx: {file: ./db_password.txt}
"""


def test_short_form_mounts_at_compose_paths(compose, write_file):
    body = "    secrets: [db_password, api_key]\n    configs: [app_conf]\n"
    spec = load(compose, write_file, body, TOP, environ={"API_KEY": "k"}).service("app")
    assert [(m.source, m.target, m.uid, m.gid, m.mode) for m in spec.secrets] == [
        ("db_password", "/run/secrets/db_password", None, None, None),
        ("api_key", "/run/secrets/api_key", None, None, None),
    ]
    assert [(m.source, m.target) for m in spec.configs] == [("app_conf", "/app_conf")]
    assert [m.digest for m in spec.secrets] == [_digest(SECRET), _digest("k")]
    assert spec.configs[0].digest == _digest("port=8080")


def test_long_form_target_uid_gid_mode(compose, write_file):
    body = """    secrets:
      - {source: db_password, target: pw, uid: "1000", gid: "1001", mode: 0440}
      - {source: api_key, target: /etc/key, mode: "0400"}
    configs:
      - {source: app_conf, target: /etc/app.conf, mode: 292}
      - {source: nginx, target: nginx.conf}
"""
    spec = load(compose, write_file, body, TOP, environ={"API_KEY": "k"}).service("app")
    assert [(m.target, m.uid, m.gid, m.mode) for m in spec.secrets] == [
        ("/run/secrets/pw", "1000", "1001", 0o440),
        ("/etc/key", None, None, 0o400),
    ]
    assert [(m.target, m.mode) for m in spec.configs] == [("/etc/app.conf", 0o444), ("/nginx.conf", None)]


def test_a_file_source_is_read_from_the_project_directory(compose, write_file):
    project = load(compose, write_file, "", TOP)
    assert project.secrets["db_password"].file.endswith("/db_password.txt")
    assert file_data(project.secrets["db_password"], project.variables) == SECRET.encode()
    assert file_data(project.configs["app_conf"], project.variables) == b"port=8080"


def test_a_new_content_is_a_new_config_hash(compose, write_file):
    body = "    secrets: [db_password]\n"
    before = load(compose, write_file, body, TOP).service("app").config_hash()
    write_file("db_password.txt", "another", dedent=False)
    text = "services:\n  app:\n    image: app:1\n" + body + TOP
    assert compose(text).service("app").config_hash() != before


def test_the_value_is_not_in_the_spec_its_repr_or_its_hash_input(compose, write_file):
    body = "    secrets: [db_password, api_key]\n    configs: [app_conf]\n"
    project = load(compose, write_file, body, TOP, environ={"API_KEY": SECRET})
    spec = project.service("app")
    assert SECRET not in repr(spec)
    assert SECRET not in str(dataclasses.asdict(spec))
    assert SECRET not in repr(project.secrets) + repr(project.configs)


def test_external_has_no_digest(compose, write_file):
    top = "secrets:\n  ext: {external: true}\n  named: {external: {name: real}}\n"
    project = load(compose, write_file, "    secrets: [ext, named]\n", top)
    assert [m.digest for m in project.service("app").secrets] == [None, None]
    assert (project.secrets["ext"].external, project.secrets["named"].name) == (True, "real")


@pytest.mark.parametrize(
    "top, message",
    [
        ("secrets: [a]\n", r"top-level secrets must be a mapping\.$"),
        ("secrets:\n  a: x\n", r"secrets\.a must be a mapping\.$"),
        ("secrets:\n  a: {}\n", r"secrets\.a needs exactly one of file, environment or external \(found: none\)\.$"),
        ("secrets:\n  a: {file: f, environment: E}\n", r"secrets\.a needs exactly one of .*\(found: file, environment\)"),
        ("secrets:\n  a: {content: x}\n", r"secrets\.a: key\(s\) content are not supported \(supported: environment,"),
        ("configs:\n  a: {driver: x, content: y}\n", r"configs\.a: key\(s\) driver are not supported"),
        ("configs:\n  a: {content: x, file: f}\n", r"configs\.a needs exactly one of file, environment, content or ext"),
    ],
)
def test_bad_top_level_entries_are_one_line(compose, write_file, top, message):
    with pytest.raises(FlowError, match=message) as info:
        load(compose, write_file, "", top)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "body, message",
    [
        ("    secrets: [nope]\n", r"service app: secrets 'nope' is not declared under the top-level secrets key\.$"),
        ("    configs: [db_password]\n", r"configs 'db_password' is not declared under the top-level configs key"),
        ("    secrets: [{source: db_password, uid: bob}]\n", r"secrets uid='bob' is not a numeric ID\.$"),
        ("    secrets: [{source: db_password, mode: '0999'}]\n", r"secrets mode='0999' is not a file mode"),
        ("    secrets: [{source: db_password, mode: 4096}]\n", r"secrets mode=4096 is not a file mode"),
        ("    configs: [{source: app_conf, owner: x}]\n", r"configs key\(s\) owner are not supported \(supported: gid,"),
    ],
)
def test_bad_references_are_one_line(compose, write_file, body, message):
    with pytest.raises(FlowError, match=message):
        load(compose, write_file, body, TOP).service("app")


def test_a_missing_variable_names_it_not_a_value(compose, write_file):
    with pytest.raises(FlowError, match=r"^secrets\.api_key: environment variable API_KEY is not set\.$"):
        load(compose, write_file, "    secrets: [api_key]\n", TOP).service("app")


def test_a_missing_file_names_it(compose, write_file):
    top = "secrets:\n  gone: {file: ./missing.txt}\n"
    with pytest.raises(FlowError, match=r"^secrets\.gone: cannot read file .*missing\.txt: No such file"):
        load(compose, write_file, "    secrets: [gone]\n", top).service("app")
