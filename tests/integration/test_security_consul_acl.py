# -*- coding: utf-8 -*-
"""Consul with ACLs (default deny): the modules and the flow role work with a token limited to
what Flow needs, fail with a clear one-line message and change nothing with a wrong token or one
lacking a permission, and never print a token, not even with -vvv.

The Consul is the test's own (tests/support/consul_acl.py) on shifted ports; its anonymous token
may only read services and nodes, which HAProxy's DNS lookups need (they carry no token)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
import yaml

from conftest import APP_V2, free_ports, wait_for
from support.consul_acl import AclConsul
from support.playbook import assert_clean_failure, run_tasks

# An HTTP probe from here, retried until health_timeout: the image's Docker HEALTHCHECK (2 s timeout)
# fails on a machine other tests keep busy, and these tests are about ACLs, not health checks.
HEALTH = "/health"
# What Flow needs: its KV prefix (state, locks), sessions (the lock), registering the services it
# deploys (test services start with "dftest"), reading nodes (health of registered instances).
FLOW_RULES = """
key_prefix "dockerflow/" { policy = "write" }
session_prefix "" { policy = "write" }
service_prefix "dftest" { policy = "write" }
node_prefix "" { policy = "read" }
"""
DNS_RULES = """
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
"""
# Everything but writing the KV prefix: deploys must be refused.
READ_ONLY_RULES = FLOW_RULES.replace('"dockerflow/" { policy = "write" }', '"dockerflow/" { policy = "read" }')


@pytest.fixture(scope="module")
def acl_consul(docker_client):
    consul = AclConsul(docker_client, free_ports(5), anonymous_rules=DNS_RULES)
    try:
        yield consul.start()
    finally:
        consul.cleanup()


@pytest.fixture
def acl_project(flow_project, acl_consul):
    token = acl_consul.token(FLOW_RULES, name="flow")
    flow_project.acl = {"consul_address": acl_consul.url, "consul_token": token}
    yield flow_project
    for key in ("services", "locks"):
        acl_consul.request("DELETE", "/v1/kv/dockerflow/%s/%s?recurse" % (key, flow_project.service))
    for service_id, entry in acl_consul.request("GET", "/v1/agent/services").items():
        if entry["Service"] == flow_project.service:
            acl_consul.request("PUT", "/v1/agent/service/deregister/%s" % service_id)


def kv_snapshot(consul, service):
    """Every key under the service's state and lock, with its modify index."""
    entries = []
    for key in ("services", "locks"):
        try:
            entries += consul.request("GET", "/v1/kv/dockerflow/%s/%s?recurse" % (key, service)) or []
        except OSError:  # 404: no key
            pass
    return sorted((e["Key"], e["ModifyIndex"]) for e in entries)


def passing(consul, service):
    return consul.request("GET", "/v1/health/service/%s?passing=1" % service)


def assert_no_token(completed, *tokens):
    output = completed.stdout + completed.stderr
    for token in tokens:
        assert token not in output, "a token appears in the output of ansible-playbook -vvv"


def test_every_module_works_with_a_limited_token_and_prints_no_token(acl_project, acl_consul, proxy):
    acl = acl_project.acl
    proxy_options = dict(proxy.options, consul_dns=acl_consul.dns, service_path=["/"])
    results, completed = run_tasks(acl_project, [
        ("flow_deploy", dict(acl, health_path=HEALTH)),
        ("flow_scale", dict(acl, scale="+1")),
        ("flow_proxy", dict(acl, **proxy_options)),
    ], extra_args=["-vvv"])
    assert_no_token(completed, acl["consul_token"], acl_consul.master_token)
    for result in results:
        assert not result.get("failed"), result
    assert (results[0]["color"], len(acl_project.running("blue"))) == ("blue", 2)
    assert len(passing(acl_consul, acl_project.service)) == 2
    assert wait_for(lambda: proxy.get("/")[0] == 200, timeout=30, what="the proxy serving blue through Consul DNS")

    acl_project.set_image(APP_V2)
    results, completed = run_tasks(acl_project, [
        ("flow_deploy", dict(acl, health_path=HEALTH)),
        ("flow_proxy", dict(acl, **proxy_options)),
        ("flow_stop_old", dict(acl, **{k: v for k, v in proxy_options.items() if k != "service_path"})),
        ("flow_rollback", acl),
        ("flow_info", acl),
    ], extra_args=["-vvv"])
    assert_no_token(completed, acl["consul_token"], acl_consul.master_token)
    for result in results:
        assert not result.get("failed"), result
    deployed, switched, stopped, rolled_back, info = results
    assert deployed["color"] == "green" and switched["changed"]
    assert proxy.get("/")[1]["version"] == "2"
    assert stopped["changed"] and rolled_back["changed"]
    assert info["live_color"] == "green" and info["state"]["releases"]


def test_wrong_or_insufficient_token_fails_clearly_and_changes_nothing(acl_project, acl_consul, proxy):
    acl = acl_project.acl
    acl_project.run("flow_deploy", dict(acl, health_path=HEALTH))
    before = (acl_project.snapshot()["containers"], kv_snapshot(acl_consul, acl_project.service))
    wrong = str(uuid.uuid4())
    read_only = acl_consul.token(READ_ONLY_RULES, name="read-only")
    proxy_options = dict(proxy.options, consul_dns=acl_consul.dns, service_path=["/"])
    modules = [("flow_deploy", {"force": True}), ("flow_scale", {"scale": "+1"}), ("flow_stop_old", {}),
               ("flow_rollback", {}), ("flow_info", {}), ("flow_proxy", proxy_options)]
    calls = [(module, dict(extra, consul_address=acl_consul.url, consul_token=wrong)) for module, extra in modules]
    # flow_info only reads, so the read-only token may use it.
    calls += [(module, dict(extra, consul_address=acl_consul.url, consul_token=read_only))
              for module, extra in modules if module != "flow_info"]
    results, completed = run_tasks(acl_project, calls, extra_args=["-vvv"])
    assert_no_token(completed, wrong, read_only, acl["consul_token"])
    rejected = "Consul at %s rejected the ACL token (consul_token) while " % acl_consul.url
    denied = "Consul at %s denied " % acl_consul.url
    for (module, params), result in zip(calls, results, strict=True):
        assert_clean_failure(result)
        expected = rejected if params["consul_token"] == wrong else denied
        assert result["msg"].startswith(expected), (module, result["msg"])
        if params["consul_token"] == read_only:
            assert "(permission denied): the ACL token (consul_token) lacks the permission." in result["msg"]
    assert (acl_project.snapshot()["containers"], kv_snapshot(acl_consul, acl_project.service)) == before


def test_flow_role_keeps_the_token_out_of_verbose_output(acl_project, acl_consul):
    token = acl_project.acl["consul_token"]
    playbook = os.path.join(acl_project.dir, "role.yml")
    with open(playbook, "w") as handle:
        yaml.safe_dump([{
            "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "dockerflow.flow.flow", "flow_steps": ["deploy", "scale"], "flow_scale": "2",
                       "flow_project_dir": acl_project.dir, "flow_consul_address": acl_consul.url,
                       "flow_consul_token": token, "flow_publish_address": "127.0.0.1", "flow_health_timeout": 60,
                       "flow_health_path": HEALTH}],
        }], handle)
    command, env = acl_project.playbook("flow_info", {})
    completed = subprocess.run(command[:-1] + ["-vvv", playbook], env=env, capture_output=True, text=True, timeout=600,
                               check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert_no_token(completed, token)
    assert len(acl_project.running("blue")) == 2
