# -*- coding: utf-8 -*-
"""Compose secrets and configs on backend container, through the real flow_deploy and flow_scale modules.

The files are written into each container before it starts (backends/container_files.py says
why); this checks what a process in the container sees (content, mode, owner), that a clone made
by flow_scale has them too, that a new secret content is a new release, and that the value is in
no result and no line of ``ansible-playbook -vvv``. (Swarm secrets need the cluster harness:
tests/unit/plugins/module_utils/backends/test_swarm_files.py covers that side without a Swarm.)
"""

from __future__ import annotations

import json
import subprocess

from conftest import APP_V1, BASE_IMAGE, FlowProject

SECRET = "s3cr3t-integration-value"
NEW_SECRET = "an0ther-s3cr3t-value"
COMPOSE = {
    "services": {
        "app": {
            "image": APP_V1,
            "ports": ["8080"],
            "depends_on": ["db"],
            "secrets": [{"source": "db_password", "uid": "1000", "gid": "1001", "mode": 0o400}],
            "configs": [{"source": "app_conf", "target": "/etc/app.conf"}],
        },
        "db": {"image": BASE_IMAGE, "command": "sleep infinity", "secrets": ["db_password"]},
    },
    "secrets": {"db_password": {"file": "./db_password.txt"}},
    "configs": {"app_conf": {"content": "port=8080\n"}},
}


def file_in(container, path):
    """(content, 'mode uid gid') of ``path`` as a process in ``container`` sees it."""
    code, content = container.exec_run(["cat", path])
    assert code == 0, content
    code, stat = container.exec_run(["stat", "-c", "%a %u %g", path])
    assert code == 0, stat
    return content.decode(), stat.decode().strip()


def run_verbose(project, module, params=None):
    """The module's result and everything ansible-playbook -vvv printed."""
    command, env = project.playbook(module, params)
    completed = subprocess.run(command + ["-vvv"], env=env, capture_output=True, text=True, timeout=600, check=False)
    completed.env_result_path = env["DOCKERFLOW_RESULT_PATH"]
    return FlowProject.parse(completed), completed.stdout + completed.stderr


def test_a_file_secret_and_a_content_config_are_in_every_instance_and_nowhere_else(make_project):
    project = make_project(COMPOSE)
    project.write("db_password.txt", SECRET)

    result, output = run_verbose(project, "flow_deploy")
    assert (result["color"], result["release"]) == ("blue", 1)
    assert SECRET not in json.dumps(result)
    assert SECRET not in output
    blue = project.running("blue")[0]
    assert file_in(blue, "/run/secrets/db_password") == (SECRET, "400 1000 1001")
    assert file_in(blue, "/etc/app.conf") == ("port=8080\n", "444 0 0")
    assert project.answer(blue)["version"] == "1"  # it runs, with its files
    db = project.docker.containers.get("%s-db-1" % project.name)  # the side target gets its secret too
    assert file_in(db, "/run/secrets/db_password") == (SECRET, "444 0 0")

    scaled, output = run_verbose(project, "flow_scale", {"scale": "+1"})
    assert SECRET not in json.dumps(scaled) and SECRET not in output
    clone = [c for c in project.running("blue") if c.id != blue.id]
    assert len(clone) == 1
    assert file_in(clone[0], "/run/secrets/db_password") == (SECRET, "400 1000 1001")
    assert file_in(clone[0], "/etc/app.conf") == ("port=8080\n", "444 0 0")

    project.run("flow_stop_old")  # nothing routes the service: blue becomes live
    project.write("db_password.txt", NEW_SECRET)
    again, output = run_verbose(project, "flow_deploy")
    assert (again["changed"], again["color"], again["release"]) == (True, "green", 2)
    assert NEW_SECRET not in json.dumps(again) and NEW_SECRET not in output
    assert [file_in(c, "/run/secrets/db_password")[0] for c in project.running("green")] == [NEW_SECRET] * 2
    # the live release keeps its own (a rollback returns to it)
    assert [file_in(c, "/run/secrets/db_password")[0] for c in project.running("blue")] == [SECRET] * 2


def test_a_target_in_an_inactive_profile_is_refused_in_one_line(make_project):
    compose = {"services": {"app": {"image": APP_V1, "ports": ["8080"], "profiles": ["canary"]}}}
    project = make_project(compose)
    refused = project.run("flow_deploy", expect_failure=True)
    assert refused["msg"] == (
        "target 'app' is in profile(s) canary, none of them active: activate one with the profiles option (or "
        "COMPOSE_PROFILES)."
    )
    assert project.containers() == []
    deployed = project.run("flow_deploy", env={"COMPOSE_PROFILES": "canary"})
    assert (deployed["color"], deployed["release"]) == ("blue", 1)
