# -*- coding: utf-8 -*-
"""Every bad input fails with a one-line message naming what is wrong, and changes nothing."""

from __future__ import annotations

import pytest

BAD_SCALES = ["+x", "--2", "0", "1.5", "-0", "two"]


@pytest.fixture
def deployed(flow_project):
    flow_project.run("flow_deploy")
    flow_project.run("flow_stop_old")
    return flow_project


@pytest.mark.parametrize("module", ["flow_deploy", "flow_scale"])
@pytest.mark.parametrize("scale", BAD_SCALES)
def test_bad_scale_values(deployed, module, scale):
    before = deployed.snapshot()
    failed = deployed.run(module, {"scale": scale, "force": True} if module == "flow_deploy" else {"scale": scale},
                          expect_failure=True)
    assert "scale" in failed["msg"] and "+N" in failed["msg"], failed["msg"]
    assert repr(scale) in failed["msg"]
    assert deployed.snapshot() == before


def test_bad_scale_from_environment_names_the_source(deployed):
    failed = deployed.run("flow_scale", env={"FLOW_SCALE": "++1"}, expect_failure=True)
    assert "'++1'" in failed["msg"]


CASES = {
    "unknown target": ({"target": "nope"}, None, "target 'nope' is not a service"),
    "unknown side target": ({"side_targets": ["cache"]}, None, "side_targets: 'cache' is not a service"),
    "missing compose file": ({"compose_path": "missing.yml"}, None, "does not exist"),
    "bad compose yaml": ({"compose_path": "bad.yml"}, ("bad.yml", "services:\n  app: [\n"), "line 3"),
    "unsupported compose key": ({"compose_path": "userns.yml"},
                                ("userns.yml", "services:\n  app:\n    userns_mode: host\n    image: x\n"),
                                "key(s) userns_mode are not supported"),
    "missing build context": ({"compose_path": "build.yml"}, ("build.yml", "services:\n  app:\n    build: ./nowhere\n"),
                              "build.yml: service app: build.context "),
    "build key of BuildKit": ({"compose_path": "ssh.yml"},
                              ("ssh.yml", "services:\n  app:\n    build: {context: ., ssh: [default]}\n"),
                              "service app: build.ssh needs BuildKit (an SSH agent for the build)"),
    "bad registry": ({"registry": "http://10.0.0.2:5000"}, None, "registry='http://10.0.0.2:5000' is not valid: use "
                                                                 "HOST[:PORT][/PATH], for example 10.0.0.2:5000."),
    "bad docker-flow.yml": ({}, ("docker-flow.yml", "target: app\nscale: [1\n"), "docker-flow.yml line"),
    "unknown docker-flow.yml key": ({}, ("docker-flow.yml", "tagret: app\n"), "unknown option 'tagret'"),
    "unreachable consul": ({"consul_address": "http://127.0.0.1:1"}, None, "Cannot reach Consul at http://127.0.0.1:1"),
    "unreachable docker": ({"docker_host": "tcp://127.0.0.1:1"}, None, "Docker engine at"),
    "bad docker_host": ({"docker_host": "ftp://x"}, None, "docker_host='ftp://x' is not valid"),
    "bad service name": ({"service_name": "bad name"}, None, "service_name='bad name' is not valid"),
    "bad health path": ({"health_path": "health", "force": True}, None, "health_path='health' is not valid"),
    "bad health timeout": ({"health_timeout": 0}, None, "health_timeout=0 is not valid"),
    "bad lock ttl": ({"lock_ttl": 5}, None, "lock_ttl=5 is not valid: use 10 to 86400"),
    "bad boolean env": ({}, None, "FLOW_BLUE_GREEN='maybe' is not a boolean"),
    "bad backend": ({"backend": "k8s"}, None, "backend must be one of: auto, container, swarm"),
    "bad backend env": ({}, None, "backend='k8s' (from env:FLOW_BACKEND) is not valid: use one of auto, container, swarm."),
    "swarm backend without a manager": ({"backend": "swarm", "force": True}, None,
                                        "backend=swarm needs a Swarm manager, and the engine at the local socket "
                                        "(docker_host) is not in Swarm mode"),
}
ENVIRONMENTS = {"bad boolean env": {"FLOW_BLUE_GREEN": "maybe"}, "bad backend env": {"FLOW_BACKEND": "k8s"}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_deploy_inputs_change_nothing(deployed, case):
    params, extra_file, expected = CASES[case]
    if extra_file:
        deployed.write(*extra_file)
    env = ENVIRONMENTS.get(case)
    before = deployed.snapshot()
    failed = deployed.run("flow_deploy", params, env=env, expect_failure=True)
    assert expected in failed["msg"], failed["msg"]
    assert deployed.snapshot() == before


def test_bad_stop_old_and_info_inputs(deployed):
    failed = deployed.run("flow_stop_old", {"keep_releases": -1}, expect_failure=True)
    assert "keep_releases=-1" in failed["msg"]
    failed = deployed.run("flow_info", {"consul_address": "not a url"}, expect_failure=True)
    assert "consul_address" in failed["msg"]
    failed = deployed.run("flow_scale", {"scale": "+1", "color": "red"}, expect_failure=True)
    assert "color" in failed["msg"] and "blue" in failed["msg"]


def test_scale_without_a_release_says_deploy_first(flow_project):
    failed = flow_project.run("flow_scale", {"scale": "+1"}, expect_failure=True)
    assert "deploy it first" in failed["msg"]


def test_rollback_without_a_kept_release_says_so(deployed):
    before = deployed.snapshot()
    failed = deployed.run("flow_rollback", expect_failure=True)
    assert "no kept green release" in failed["msg"], failed["msg"]
    assert deployed.snapshot() == before
