# -*- coding: utf-8 -*-
"""Secrets and configs of Swarm services (swarm_files.py): digest names, references, creating and pruning.

No Swarm manager runs in unit tests (the host's engine must never enter Swarm mode), so the
engine here is a stand-in that keeps secrets and configs in dicts and refuses, as the engine
does, to remove one a service names. The real thing: tests/cluster/test_swarm_compose.py.
"""

from __future__ import annotations

import hashlib

import docker.errors
import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.base import DeploymentContext
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm import SwarmBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm_files import (
    LABEL_FILE,
    SwarmFiles,
    file_reference,
    object_name,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import FileMountSpec
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_PROJECT

SECRET = "s3cr3t-value-never-shown"
FILE = """
services:
  app:
    image: app:1
    secrets: [db_password, {source: ext, target: /etc/ext, uid: "7", mode: 0400}]
    configs: [{source: app_conf, target: /etc/app.conf}]
secrets:
  db_password: {file: ./pw.txt}
  ext: {external: {name: shared_cert}}
configs:
  app_conf: {content: "port=8080"}
"""


class FakeEngine:
    """Swarm secrets and configs of one manager; ``in_use`` are the IDs a service names."""

    def __init__(self):
        self.objects = {"secrets": {}, "configs": {}}
        self.in_use = set()
        self.data = {}

    def _list(self, kind, filters):
        result = []
        for object_id, spec in self.objects[kind].items():
            if "name" in filters and filters["name"] not in spec["Name"]:
                continue
            if "label" in filters:
                key, _eq, value = filters["label"].partition("=")
                if spec["Labels"].get(key) != value:
                    continue
            result.append({"ID": object_id, "Spec": spec})
        return result

    def _create(self, kind, name, data, labels=None):
        object_id = "%s-%d" % (kind, len(self.objects[kind]) + len(self.data))
        self.objects[kind][object_id] = {"Name": name, "Labels": labels or {}}
        self.data[object_id] = data
        return {"ID": object_id}

    def _remove(self, kind, object_id):
        if object_id in self.in_use:
            raise docker.errors.APIError("rpc error: secret is in use by the following service: app-blue")
        del self.objects[kind][object_id]

    def secrets(self, filters=None):
        return self._list("secrets", filters or {})

    def configs(self, filters=None):
        return self._list("configs", filters or {})

    def create_secret(self, name, data, labels=None):
        return self._create("secrets", name, data, labels)

    def create_config(self, name, data, labels=None):
        return self._create("configs", name, data, labels)

    def remove_secret(self, object_id):
        self._remove("secrets", object_id)

    def remove_config(self, object_id):
        self._remove("configs", object_id)

    def names(self, kind):
        return sorted(spec["Name"] for spec in self.objects[kind].values())


class Files(SwarmFiles):
    def __init__(self, api):
        self.api = api

    def _call(self, what, function, *args, **kwargs):
        return function(*args, **kwargs)


def digest12(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.fixture
def engine():
    engine = FakeEngine()
    engine.create_secret("shared_cert", b"cert")
    return engine


def load(compose, write_file, password):
    write_file("pw.txt", password, dedent=False)
    return compose(FILE)


def test_object_names_carry_the_content_digest():
    assert object_name("shop", "db_password", "0123456789abcdef") == "shop_db_password_0123456789ab"
    with pytest.raises(FlowError, match=r"^p{40}_db_password_0123456789ab is too long for a Swarm secret or config "
                                        r"name \(65 characters, at most 64\)"):
        object_name("p" * 40, "db_password", "0123456789abcdef")


def test_a_reference_has_compose_defaults():
    mount = FileMountSpec(source="s", target="/run/secrets/s", digest="d")
    assert file_reference("secrets", mount, "ID1", "p_s_d") == {
        "File": {"Name": "/run/secrets/s", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretID": "ID1", "SecretName": "p_s_d"}
    mount = FileMountSpec(source="c", target="/c", uid="5", gid="6", mode=0o400)
    assert file_reference("configs", mount, "ID2", "c1")["File"] == {"Name": "/c", "UID": "5", "GID": "6", "Mode": 0o400}


def test_references_create_digest_named_objects_and_use_external_ones(compose, write_file, engine):
    project = load(compose, write_file, SECRET)
    references = Files(engine).file_references(project.service("app"), "shop", project)
    name = "shop_db_password_%s" % digest12(SECRET)
    assert [(r["SecretName"], r["File"]["Name"], r["File"]["UID"], r["File"]["Mode"]) for r in references["Secrets"]] == [
        (name, "/run/secrets/db_password", "0", 0o444), ("shared_cert", "/etc/ext", "7", 0o400)]
    assert [(r["ConfigName"], r["File"]["Name"]) for r in references["Configs"]] == [
        ("shop_app_conf_%s" % digest12("port=8080"), "/etc/app.conf")]
    created = next(i for i, spec in engine.objects["secrets"].items() if spec["Name"] == name)
    assert engine.data[created] == SECRET.encode()
    assert engine.objects["secrets"][created]["Labels"] == {LABEL_PROJECT: "shop", LABEL_FILE: "db_password"}
    assert SECRET not in repr(references)


def test_an_object_carries_the_labels_the_compose_file_gives_it(compose, write_file, engine):
    """Failed on 66a39dd: the top-level ``labels`` of a secret or config were read and not put on the object."""
    write_file("pw.txt", SECRET, dedent=False)
    project = compose(FILE.replace("{file: ./pw.txt}", "{file: ./pw.txt, labels: {team: shop}}"))
    Files(engine).file_references(project.service("app"), "shop", project)
    created = next(spec for spec in engine.objects["secrets"].values() if spec["Name"].startswith("shop_db_password_"))
    assert created["Labels"] == {"team": "shop", LABEL_PROJECT: "shop", LABEL_FILE: "db_password"}


def test_a_new_content_is_a_new_object_and_the_old_one_stays_while_a_release_uses_it(compose, write_file, engine):
    files = Files(engine)
    first = load(compose, write_file, "one")
    old = files.file_references(first.service("app"), "shop", first)["Secrets"][0]
    engine.in_use.add(old["SecretID"])  # the previous release's service names it
    second = load(compose, write_file, "two")
    files.file_references(second.service("app"), "shop", second)
    both = sorted(["shop_db_password_%s" % digest12("one"), "shop_db_password_%s" % digest12("two")])
    assert engine.names("secrets") == sorted(both + ["shared_cert"])
    engine.in_use.discard(old["SecretID"])  # that release is gone: the next deploy removes its secret
    files.file_references(second.service("app"), "shop", second)
    assert engine.names("secrets") == sorted(["shop_db_password_%s" % digest12("two"), "shared_cert"])


def test_a_release_without_secrets_still_removes_the_unused_objects_of_earlier_ones(compose, write_file, engine):
    """Failed on 66a39dd: only a release that mounted secrets (configs) pruned them, so dropping them kept the
    objects of the earlier releases for good."""
    files = Files(engine)
    first = load(compose, write_file, SECRET)
    files.file_references(first.service("app"), "shop", first)
    assert len(engine.names("secrets")) == 2 and len(engine.names("configs")) == 1
    plain = compose("services: {app: {image: app:1}}")
    assert files.file_references(plain.service("app"), "shop", plain) == {}
    assert engine.names("secrets") == ["shared_cert"] and engine.names("configs") == []


def test_the_same_content_reuses_its_object(compose, write_file, engine):
    files = Files(engine)
    project = load(compose, write_file, SECRET)
    first = files.file_references(project.service("app"), "shop", project)
    assert files.file_references(project.service("app"), "shop", project) == first
    assert len(engine.objects["secrets"]) == 2


def test_pruning_spares_other_projects_unlabelled_objects_and_a_longer_name(compose, write_file, engine):
    """Only the project's own digest-named objects go; the engine's name filter matches a prefix, not the name."""
    files = Files(engine)
    project = load(compose, write_file, SECRET)
    name = "shop_db_password_%s" % digest12(SECRET)
    engine.create_secret(name + "x", b"other", labels={LABEL_PROJECT: "shop", LABEL_FILE: "db_password"})
    engine.create_secret("shop_db_password_0123456789ab", b"old", labels={LABEL_PROJECT: "other", LABEL_FILE: "db_password"})
    engine.create_secret("shop_hand_made", b"mine", labels={LABEL_PROJECT: "shop"})
    references = files.file_references(project.service("app"), "shop", project)
    assert references["Secrets"][0]["SecretName"] == name
    assert engine.data[references["Secrets"][0]["SecretID"]] == SECRET.encode()
    assert engine.names("secrets") == sorted([name, "shared_cert", "shop_db_password_0123456789ab", "shop_hand_made"])


def test_a_missing_external_secret_is_one_line(compose, write_file):
    project = load(compose, write_file, SECRET)
    with pytest.raises(FlowError) as info:
        Files(FakeEngine()).file_references(project.service("app"), "shop", project)
    assert str(info.value) == "secrets.ext is external, but the Swarm has no secret named shared_cert: create it first."


class Captured(Exception):
    """Stops SwarmBackend right where it would send the service spec to the manager."""


class CapturingSwarm(SwarmBackend):
    """The Swarm backend on the stand-in engine, stopped where it creates the service: what it would send."""

    def __init__(self, api):
        self.api, self.base_url, self._undo = api, "stand-in", {}

    def ensure_networks(self, project, compose_project, spec):
        return {"default": "%s_default" % project}

    def _pinned(self, image):
        return image

    def _has_docker_health(self, spec):
        return False

    def _create_or_update(self, wanted, service, release):
        raise Captured(wanted)

    def _create(self, spec):
        raise Captured(spec)


def sent(call):
    with pytest.raises(Captured) as info:
        call()
    return info.value.args[0]["TaskTemplate"]["ContainerSpec"]


def test_a_release_and_a_side_target_mount_them(compose, write_file, engine):
    project = load(compose, write_file, SECRET)
    spec = project.service("app")
    backend = CapturingSwarm(engine)
    context = DeploymentContext(project="shop", target="app", service="shop-app", publish_address="0.0.0.0")
    for container in (sent(lambda: backend.run_instances(spec, context, "blue", 1, [1], "hash", project)),
                      sent(lambda: backend._create_side_target(spec, project, "shop", "shop-app", "0.0.0.0"))):
        assert [r["SecretName"] for r in container["Secrets"]] == ["shop_db_password_%s" % digest12(SECRET), "shared_cert"]
        assert [r["ConfigName"] for r in container["Configs"]] == ["shop_app_conf_%s" % digest12("port=8080")]
        assert SECRET not in repr(container)
