# -*- coding: utf-8 -*-
"""Secrets and configs of plain containers as the tar put into a container before it starts (container_files.py).

The put_archive into a real container, its mode and owner, run in
tests/integration/test_secrets_configs.py.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_files import (
    LABEL_FILES,
    files_archive,
    files_label,
    labelled_targets,
    retargeted_archive,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

SECRET = "s3cr3t-value-never-shown"
FILE = """
services:
  app:
    image: app:1
    secrets:
      - db_password
      - {source: api_key, target: /etc/key, uid: "1000", gid: "1001", mode: 0400}
    configs: [app_conf]
secrets:
  db_password: {file: ./pw.txt}
  api_key: {environment: API_KEY}
  ext: {external: true}
configs:
  app_conf: {content: "port=8080"}
"""


@pytest.fixture
def project(compose, write_file):
    write_file("pw.txt", SECRET, dedent=False)
    return compose(FILE, environ={"API_KEY": "key-1"})


def members(archive):
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: (tar.extractfile(m).read().decode(), oct(m.mode), m.uid, m.gid) for m in tar.getmembers()}


def test_the_archive_holds_each_file_at_its_target_with_owner_and_mode(project):
    archive = files_archive(project.service("app"), project)
    assert members(archive) == {
        "run/secrets/db_password": (SECRET, "0o444", 0, 0),
        "etc/key": ("key-1", "0o400", 1000, 1001),
        "app_conf": ("port=8080", "0o444", 0, 0),
    }


def test_no_secrets_no_archive_no_label(compose):
    project = compose("services:\n  app:\n    image: a\n")
    spec = project.service("app")
    assert files_archive(spec, project) is None
    assert files_label(spec) == {}


def test_the_label_lists_paths_not_values(project):
    label = files_label(project.service("app"))
    assert json.loads(label[LABEL_FILES]) == ["/run/secrets/db_password", "/etc/key", "/app_conf"]
    assert SECRET not in label[LABEL_FILES]
    assert labelled_targets(label) == ["/run/secrets/db_password", "/etc/key", "/app_conf"]
    assert labelled_targets({LABEL_FILES: "not json"}) == []


def test_external_is_refused_in_one_line(compose, write_file):
    project = compose(FILE.replace("- db_password", "- ext"), environ={"API_KEY": "k"})
    with pytest.raises(FlowError) as info:
        files_archive(project.service("app"), project)
    assert str(info.value) == (
        "service app: secrets.ext is external, which exists only in Swarm: backend container needs file, environment "
        "or content."
    )


def test_read_only_is_refused_in_one_line(compose, write_file):
    write_file("pw.txt", SECRET, dedent=False)
    project = compose(FILE.replace("image: app:1", "image: app:1\n    read_only: true"), environ={"API_KEY": "k"})
    with pytest.raises(FlowError, match=r"^service app: secrets and configs on backend container .* read_only: true forbids"):
        files_archive(project.service("app"), project)


def test_a_clone_gets_its_templates_files_at_their_full_paths(project):
    """get_archive returns one file under its base name; the clone's tar puts it back where it was."""
    original = files_archive(project.service("app"), project)
    copies = []
    with tarfile.open(fileobj=io.BytesIO(original)) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            single = io.BytesIO()
            with tarfile.open(fileobj=single, mode="w") as out:
                info = tarfile.TarInfo(member.name.rsplit("/", 1)[-1])
                info.size, info.mode, info.uid, info.gid = len(data), member.mode, member.uid, member.gid
                out.addfile(info, io.BytesIO(data))
            value = single.getvalue()
            copies.append(("/" + member.name, [value[:100], value[100:]]))
    assert members(retargeted_archive(copies)) == members(original)
