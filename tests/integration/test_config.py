# -*- coding: utf-8 -*-
"""Options come from parameters over FLOW_* environment over docker-flow.yml."""

from __future__ import annotations


def test_parameters_over_environment_over_file(flow_project):
    flow_project.write("docker-flow.yml", "target: app\nblue_green: true\nscale: 2\nside_targets:\n  - db\n")
    from_file = flow_project.run("flow_deploy")
    assert from_file["option_sources"]["scale"] == "file"
    assert len(flow_project.running("blue")) == 2

    flow_project.run("flow_stop_old")  # blue is live from here on: every deploy below is green

    from_env = flow_project.run("flow_deploy", {"force": True}, env={"FLOW_SCALE": "3"})
    assert from_env["option_sources"]["scale"] == "env:FLOW_SCALE"
    assert from_env["color"] == "green" and len(flow_project.containers("green")) == 3

    from_param = flow_project.run("flow_deploy", {"force": True, "scale": "1"}, env={"FLOW_SCALE": "3"})
    assert from_param["option_sources"]["scale"] == "parameter"
    assert from_param["color"] == "green" and len(flow_project.containers("green")) == 1

    relative = flow_project.run("flow_deploy", {"force": True}, env={"FLOW_SCALE": "+1"})
    assert len(flow_project.containers("green")) == 3, "+1 is relative to the live count (2)"
    assert relative["release"] == 4


def test_seed_environment_names(flow_project):
    result = flow_project.run(
        "flow_deploy",
        {"project_dir": flow_project.dir, "publish_address": "127.0.0.1"},
        env={"FLOW_CONSUL_ADDRESS": __import__("conftest").CONSUL_URL, "FLOW_TARGET": "app",
             "FLOW_SIDE_TARGETS": "db", "FLOW_BLUE_GREEN": "false"},
        defaults=False,
    )
    assert result["color"] == "plain"
    assert result["option_sources"]["consul_address"] == "env:FLOW_CONSUL_ADDRESS"
    assert result["option_sources"]["side_targets"] == "env:FLOW_SIDE_TARGETS"


def test_module_defaults_group(flow_project):
    import subprocess

    import yaml

    from conftest import CONSUL_URL

    play = [{
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/dockerflow.flow.flow": {
            "project_dir": flow_project.dir, "consul_address": CONSUL_URL, "publish_address": "127.0.0.1"}},
        "tasks": [
            {"dockerflow.flow.flow_deploy": {}},
            {"dockerflow.flow.flow_info": {}, "register": "info"},
            {"ansible.builtin.assert": {"that": ["info.deployed_color == 'blue'", "info.colors.blue.members | length == 1"]}},
        ],
    }]
    path = flow_project.dir + "/group.yml"
    with open(path, "w") as handle:
        yaml.safe_dump(play, handle)
    completed = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                                "ansible_python_interpreter={{ ansible_playbook_python }}", path],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
