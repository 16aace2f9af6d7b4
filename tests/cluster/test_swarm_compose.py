# -*- coding: utf-8 -*-
"""Compose secrets and configs on the Swarm backend, on the multi-node cluster (backends/swarm_files.py).

One service (three tasks, one a node) and its side target ``db`` read a file secret and a
content config; what is checked is what a process in each task sees on its node (content,
mode, owner), which Docker secret and config objects the manager holds, and that the secret's
value is in no module result and no line of ``ansible-playbook -vvv``:

- release 1 (blue): the objects are ``<project>_<key>_<digest12>`` of their content;
- release 2 (green) with a changed secret: a new object, blue keeps reading the old one;
- stop-old, then flow_rollback: blue runs again and reads release 1's secret;
- releases 3 and 4 (green, each replacing the previous one in place): an object is removed
  only once no service names it (release 2's), while the ones blue and the side target still
  name stay.

No proxy: nothing routes the service, so stop-old promotes the newest release. The tests run
in file order and share the service (a module fixture).
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from test_swarm_backend import SwarmService

SECRETS = ["s3cr3t-swarm-release-1", "s3cr3t-swarm-release-2", "s3cr3t-swarm-release-3", "s3cr3t-swarm-release-4"]
CONFIG = "port=8080\n"
APP_SECRET = "/run/secrets/password"  # the app's target (relative in the Compose file)
DB_SECRET = "/run/secrets/db_password"  # the side target's, Compose's default
APP_CONFIG = "/etc/app.conf"


def digest12(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class SwarmComposeService(SwarmService):
    """SwarmService with secrets and configs in its Compose file, and what the tasks read."""

    def compose(self, image):
        compose = super().compose(image)
        app, db = compose["services"]["app"], compose["services"]["db"]
        app["deploy"]["placement"]["max_replicas_per_node"] = 1  # a task on every node: each node gets the files
        app["secrets"] = [{"source": "db_password", "target": "password", "uid": "1000", "gid": "1001", "mode": 0o400}]
        app["configs"] = [{"source": "app_conf", "target": APP_CONFIG, "mode": 0o440}]
        db["secrets"] = ["db_password"]
        compose["secrets"] = {"db_password": {"file": "./db_password.txt"}}
        compose["configs"] = {"app_conf": {"content": CONFIG}}
        return compose

    def write_secret(self, value):
        self.project.write("db_password.txt", value)

    def run_verbose(self, module, params=None):
        """The module's result and everything ``ansible-playbook -vvv`` printed (it must not fail)."""
        params = dict(self.options, health_timeout=120, **(params or {}))
        command, env = self.project.playbook(module, params, defaults=False)
        completed = subprocess.run(command + ["-vvv"], env=env, capture_output=True, text=True, timeout=900,
                                   check=False)
        completed.env_result_path = env["DOCKERFLOW_RESULT_PATH"]
        result = self.project.parse(completed)
        print("[swarm compose] %s: %s" % (module, result.get("msg")))
        return result, completed.stdout + completed.stderr

    # -- the manager's view ----------------------------------------------------------------------
    def listed(self, kind):
        """The project's Docker secrets or configs (``kind``) as the manager lists them."""
        listing = getattr(self.cluster.manager.api, kind)
        return listing(filters={"label": "com.docker.compose.project=%s" % self.name})

    def objects(self, kind):
        """{name: labels} of the project's Docker secrets or configs (``kind``)."""
        return {o["Spec"]["Name"]: o["Spec"].get("Labels") or {} for o in self.listed(kind)}

    def secret_name(self, value):
        return "%s_db_password_%s" % (self.name, digest12(value))

    def files_read(self, service_name, paths):
        """{task ID: {path: (content, 'mode uid gid')}} of the running tasks of Swarm service ``service_name``."""
        manager = self.cluster.manager.api
        nodes = {n["ID"]: n["Status"]["Addr"] for n in manager.nodes()}
        tasks = manager.tasks(filters={"service": service_name, "desired-state": "running"})
        read = {}
        for task in tasks:
            if task["Status"]["State"] != "running":
                continue
            engine = self.cluster.engine(nodes[task["NodeID"]])
            container = engine.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
            read[task["ID"]] = {path: file_in(container, path) for path in paths}
        return read

    def color_reads(self, color, secret):
        """Every running task of ``color`` reads ``secret`` and the config, with their owners and modes."""
        read = self.files_read("%s-%s" % (self.service, color), [APP_SECRET, APP_CONFIG])
        assert read and all(files == {APP_SECRET: (secret, "400 1000 1001"), APP_CONFIG: (CONFIG, "440 0 0")}
                            for files in read.values()), read
        return read

    def cleanup(self):
        super().cleanup()
        manager = self.cluster.manager.api
        for kind, remove in (("secrets", manager.remove_secret), ("configs", manager.remove_config)):
            for found in self.listed(kind):
                remove(found["ID"])


def file_in(container, path):
    """(content, 'mode uid gid') of ``path`` as a process in ``container`` sees it."""
    code, content = container.exec_run(["cat", path])
    assert code == 0, (path, content)
    code, stat = container.exec_run(["stat", "-L", "-c", "%a %u %g", path])
    assert code == 0, (path, stat)
    return content.decode(), stat.decode().strip()


def assert_nowhere(value, result, output):
    assert value not in json.dumps(result), "the secret value is in the module result"
    assert value not in output, "the secret value is in the output of ansible-playbook -vvv"


@pytest.fixture(scope="module")
def swarm_compose(provisioned_cluster, tmp_path_factory):
    service = SwarmComposeService(provisioned_cluster.cluster, tmp_path_factory.mktemp("swarm-compose"))
    service.write_secret(SECRETS[0])
    yield service
    service.cleanup()


def test_release_1_tasks_on_every_node_and_the_side_target_read_the_digest_named_secret(swarm_compose):
    result, output = swarm_compose.run_verbose("flow_deploy", {"scale": 3, "side_targets": ["db"],
                                                               "health_path": "/health"})
    assert (result["color"], result["release"]) == ("blue", 1)
    assert_nowhere(SECRETS[0], result, output)
    read = swarm_compose.color_reads("blue", SECRETS[0])
    tasks = swarm_compose.tasks("blue")
    assert len(read) == 3 and {address for address, _port in tasks.values()} == set(swarm_compose.cluster.nodes)

    name = swarm_compose.secret_name(SECRETS[0])
    project = {"com.docker.compose.project": swarm_compose.name}
    assert swarm_compose.objects("secrets") == {name: dict(project, **{"dockerflow.file": "db_password"})}
    assert swarm_compose.objects("configs") == {
        "%s_app_conf_%s" % (swarm_compose.name, digest12(CONFIG)): dict(project, **{"dockerflow.file": "app_conf"})}
    container = swarm_compose.swarm_service("blue")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert [(s["SecretName"], s["File"]["Name"]) for s in container["Secrets"]] == [(name, APP_SECRET)]
    assert SECRETS[0] not in json.dumps(container)

    db = swarm_compose.files_read("%s-db" % swarm_compose.name, [DB_SECRET])
    assert list(db.values()) == [{DB_SECRET: (SECRETS[0], "444 0 0")}], db
    state = swarm_compose.cluster.consul("/v1/kv/dockerflow/services/%s?raw" % swarm_compose.service)
    assert SECRETS[0] not in json.dumps(state)


def test_release_2_with_a_changed_secret_gets_a_new_object_and_release_1_keeps_its_own(swarm_compose):
    swarm_compose.write_secret(SECRETS[1])
    result, output = swarm_compose.run_verbose("flow_deploy", {"health_path": "/health"})
    assert (result["changed"], result["color"], result["release"]) == (True, "green", 2)
    assert_nowhere(SECRETS[1], result, output)
    assert len(swarm_compose.color_reads("green", SECRETS[1])) == 3
    assert len(swarm_compose.color_reads("blue", SECRETS[0])) == 3
    assert set(swarm_compose.objects("secrets")) == {swarm_compose.secret_name(v) for v in SECRETS[:2]}
    assert len(swarm_compose.objects("configs")) == 1  # the same content: the same object


def test_a_rollback_reads_the_previous_secret(swarm_compose):
    stopped = swarm_compose.run("flow_stop_old")
    assert len(stopped["stopped"]) == 3 and swarm_compose.replicas("blue") == 0
    result, output = swarm_compose.run_verbose("flow_rollback")
    assert (result["color"], result["release"]) == ("blue", 1)
    assert_nowhere(SECRETS[0], result, output)
    assert len(swarm_compose.color_reads("blue", SECRETS[0])) == 3
    swarm_compose.run("flow_stop_old")  # blue is live again; green (release 2) stopped, its service kept
    assert swarm_compose.replicas("green") == 0
    assert set(swarm_compose.objects("secrets")) == {swarm_compose.secret_name(v) for v in SECRETS[:2]}


def test_an_object_is_removed_only_when_no_service_names_it(swarm_compose):
    # Release 3 replaces release 2 in green: when it prunes, green still names release 2's secret.
    swarm_compose.write_secret(SECRETS[2])
    result, output = swarm_compose.run_verbose("flow_deploy", {"health_path": "/health"})
    assert (result["color"], result["release"]) == ("green", 3)
    assert_nowhere(SECRETS[2], result, output)
    swarm_compose.color_reads("green", SECRETS[2])
    assert set(swarm_compose.objects("secrets")) == {swarm_compose.secret_name(v) for v in SECRETS[:3]}
    # Release 4 replaces release 3: now nothing names release 2's secret, and it goes; blue's and
    # the side target's (release 1's) and green's own stay.
    swarm_compose.write_secret(SECRETS[3])
    result, output = swarm_compose.run_verbose("flow_deploy", {"health_path": "/health"})
    assert (result["color"], result["release"]) == ("green", 4)
    assert_nowhere(SECRETS[3], result, output)
    swarm_compose.color_reads("green", SECRETS[3])
    swarm_compose.color_reads("blue", SECRETS[0])
    assert set(swarm_compose.objects("secrets")) == {swarm_compose.secret_name(v)
                                                     for v in (SECRETS[0], SECRETS[2], SECRETS[3])}
    assert len(swarm_compose.objects("configs")) == 1
