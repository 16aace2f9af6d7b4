# -*- coding: utf-8 -*-
"""What every flow module does before and after its step: resolve options from parameters,
FLOW_* environment and docker-flow.yml, derive names, refuse bad values, and turn the
outcome into exit_json or a one-line fail_json.

A real AnsibleModule parses the arguments (ansible.module_utils.testing). Where a test
needs the proxy's Docker client or a Consul client, a recorder stands in for the
connection: these tests are about the options the module derives, and
tests/integration drives every module against the real engine and Consul.
"""

from __future__ import annotations

import contextlib
import json
import os
import types

import pytest
from ansible.module_utils.common import warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dockerflow.flow.plugins.module_utils import module_base
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import (
    CONSUL_ARGS,
    DOCKER_ARGS,
    PROXY_ARGS,
    SERVICE_ARGS,
    FlowModule,
    argument_spec,
)

SPEC = argument_spec(DOCKER_ARGS, CONSUL_ARGS, SERVICE_ARGS, PROXY_ARGS, scale=dict(type="raw"),
                     health_timeout=dict(type="int"), max_instances=dict(type="int"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("FLOW", "DOCKER_", "CONSUL_")):
            monkeypatch.delenv(name)


@pytest.fixture
def module():
    """module(args) -> a FlowModule over ``args``; they stay patched in until the test ends, as
    exit_json and fail_json read them too."""
    with contextlib.ExitStack() as stack:

        def make(args, check_mode=False, diff=False):
            stack.enter_context(patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)))
            return FlowModule(SPEC)

        yield make


@pytest.fixture(autouse=True)
def no_warnings_from_other_tests():
    """AnsibleModule keeps warnings in a process-wide registry."""
    warnings._global_warnings.clear()
    yield
    warnings._global_warnings.clear()


def exit_result(capsys, runner, action):
    """(exit code, result) of ``runner.run(action)``, warnings as their messages."""
    with pytest.raises(SystemExit) as caught:
        runner.run(action)
    result = json.loads(capsys.readouterr().out)
    result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    return caught.value.code, result


@pytest.fixture
def project(tmp_path):
    directory = tmp_path / "Books_MS"
    directory.mkdir()
    (directory / "docker-compose.yml").write_text("services:\n  app:\n    image: x\n", encoding="utf-8")
    return directory


def test_argument_spec_merges_groups_and_extra_options_without_sharing_them():
    spec = argument_spec(DOCKER_ARGS, scale=dict(type="raw"))
    assert spec["docker_host"] == {"type": "str", "aliases": ["host"]} and spec["scale"] == {"type": "raw"}
    spec["docker_host"]["type"] = "int"
    assert DOCKER_ARGS["docker_host"]["type"] == "str"


def test_names_default_from_the_compose_directory_and_target(project, module):
    runner = module({"project_dir": str(project)})
    values = runner.resolve()
    assert values["project"] == "books_ms" and values["target"] == "app"
    assert values["service_name"] == "books-ms-app"  # one DNS label: '_' and '.' become '-'
    assert values["service_address"] == "127.0.0.1"
    assert runner.sources["project"] == "default" and runner.sources["service_name"] == "default"


def test_parameters_win_over_environment_over_the_flow_file(project, monkeypatch, module):
    (project / "docker-flow.yml").write_text("target: web\nscale: '+2'\nconsul_address: http://file:8500\n",
                                             encoding="utf-8")
    monkeypatch.setenv("FLOW_CONSUL_ADDRESS", "http://env:8500")
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    runner = module({"project_dir": str(project), "scale": "3", "compose_path": "docker-compose.yml"})
    values = runner.resolve()
    assert (values["scale"], runner.sources["scale"]) == ("3", "parameter")
    assert (values["consul_address"], runner.sources["consul_address"]) == ("http://env:8500", "env:FLOW_CONSUL_ADDRESS")
    assert (values["target"], runner.sources["target"]) == ("web", "file")
    assert values["compose_path"] == str(project / "docker-compose.yml")
    assert values["service_address"] == "10.0.0.5"  # where published ports answer: the engine's host


@pytest.mark.parametrize(
    "args, environ, message",
    [
        ({"project_dir": "/nonexistent/dir"}, {}, "project_dir /nonexistent/dir is not a directory."),
        ({"flow_file": "missing.yml"}, {}, "missing.yml"),
        ({"health_timeout": 0}, {}, "health_timeout=0 is not valid: use a whole number of 1 or more."),
        ({}, {"FLOW_BACKEND": "k8s"}, "backend='k8s' (from env:FLOW_BACKEND) is not valid: use one of auto, container, swarm."),
        ({"lock_ttl": 5}, {}, "lock_ttl=5 is not valid: use 10 to 86400 seconds"),
        ({"service_name": "bad name"}, {}, "service_name='bad name' is not valid: use 1-63 letters"),
    ],
)
def test_bad_options_are_refused_with_the_parameter_named(project, monkeypatch, args, environ, message, module):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    runner = module(dict({"project_dir": str(project)}, **args))
    with pytest.raises(FlowError) as caught:
        runner.resolve()
    assert message in caught.value.msg


@pytest.mark.parametrize(
    "args, message",
    [
        ({"health_timeout": float("inf")}, "health_timeout=inf: infinity is not valid for this option: use a whole number."),
        ({"health_timeout": "-Infinity", "max_instances": "inf"},
         "health_timeout='-Infinity', max_instances='inf': infinity is not valid for these options: use a whole number."),
    ],
)
def test_an_infinite_integer_fails_cleanly_naming_the_option(project, capsys, module, args, message):
    # ansible-core's own int check raises OverflowError on these (a NaN or a word gets its message)
    with pytest.raises(SystemExit) as caught:
        module(dict({"project_dir": str(project), "consul_token": "s3cret"}, **args))
    printed = capsys.readouterr().out
    result = json.loads(printed)
    assert caught.value.code == 1 and result["failed"] and result["msg"] == message
    assert "s3cret" not in printed, "no_log options stay hidden in the lenient module too"


def test_run_exits_with_the_result_its_sources_and_no_diff_unless_asked(project, capsys, module):
    runner = module({"project_dir": str(project), "scale": "2"})
    code, result = exit_result(capsys, runner, lambda r: {"changed": True, "msg": "done", "diff": {"before": 1}})
    assert code == 0 and result["changed"] and result["msg"] == "done" and "diff" not in result
    assert result["option_sources"] == {"scale": "parameter"}
    runner = module({"project_dir": str(project)}, diff=True)
    code, result = exit_result(capsys, runner, lambda r: {"changed": False, "diff": {"before": 1}})
    assert result["diff"] == {"before": 1}


def test_a_flow_error_is_one_line_with_its_details_and_a_bug_is_named(project, capsys, module):
    def refuse(runner):
        raise FlowError("Release 2 failed.", failed_instance="app-green-1")

    code, result = exit_result(capsys, module({"project_dir": str(project)}), refuse)
    assert code == 1 and result["failed"] and result["msg"] == "Release 2 failed."
    assert result["failed_instance"] == "app-green-1"

    def bug(runner):
        raise KeyError("colors")

    code, result = exit_result(capsys, module({"project_dir": str(project)}), bug)
    assert code == 1 and result["msg"] == "Unexpected KeyError: 'colors'"


def test_the_flows_warnings_become_module_warnings(project, capsys, module):
    def action(runner):
        runner.current_flow = types.SimpleNamespace(warnings=["Undoing the new instances was incomplete."])
        return {"changed": False}

    code, result = exit_result(capsys, module({"project_dir": str(project)}), action)
    assert code == 0 and result["warnings"] == ["Undoing the new instances was incomplete."]


@pytest.mark.parametrize("error, message", [
    (FlowError("Release 2 of books-app (green) failed."), "Release 2 of books-app (green) failed."),
    (KeyError("colors"), "Unexpected KeyError: 'colors'"),
])
def test_the_flows_warnings_reach_the_user_when_the_step_fails_too(project, capsys, module, error, message):
    # Hole 8 of issue 10: fail_json came before the warnings, so "undoing ... was incomplete" was lost.
    def failing(runner):
        runner.current_flow = types.SimpleNamespace(warnings=["Undoing the new instances was incomplete: refused."])
        raise error

    code, result = exit_result(capsys, module({"project_dir": str(project)}), failing)
    assert code == 1 and result["msg"] == message
    assert result["warnings"] == ["Undoing the new instances was incomplete: refused."]


def test_the_originals_proxy_host_and_reconf_port_are_reported_as_ignored(project, monkeypatch, capsys, module):
    # Hole 9 of issue 10: the README said they worked; they were read and ignored without a word.
    (project / "docker-flow.yml").write_text("proxy_host: 10.100.198.200\nproxy_reconf_port: 8081\n", encoding="utf-8")
    monkeypatch.setenv("FLOW_PROXY_HOST", "10.100.198.200")
    code, result = exit_result(capsys, module({"project_dir": str(project)}), lambda r: {"changed": False})
    flow_file = str(project / "docker-flow.yml")
    assert code == 0 and result["warnings"] == [
        "proxy_host (set in FLOW_PROXY_HOST and %s) is ignored: the original sent docker-flow-proxy's reconfigure "
        "requests to that host; Flow runs and reconfigures HAProxy through the Docker engine of the proxy host: "
        "proxy_docker_host (else docker_host) names it." % flow_file,
        "proxy_reconf_port (set in %s) is ignored: it was the port of docker-flow-proxy's reconfigure API, which Flow "
        "does not use (it renders HAProxy's configuration and reloads it through proxy_docker_host): remove it." % flow_file,
    ]


def test_modules_without_proxy_options_say_nothing_of_the_ignored_proxy_options(project, monkeypatch, capsys):
    monkeypatch.setenv("FLOW_PROXY_RECONF_PORT", "8081")
    spec = argument_spec(DOCKER_ARGS, CONSUL_ARGS, SERVICE_ARGS, scale=dict(type="raw"))
    with patch_module_args({"project_dir": str(project)}):
        code, result = exit_result(capsys, FlowModule(spec), lambda r: {"changed": False})
    assert code == 0 and result["warnings"] == []


def test_proxy_max_servers_reaches_the_proxy_settings_and_is_checked(project, monkeypatch, module):
    monkeypatch.setattr(module_base, "connect", Connections())
    runner = module({"project_dir": str(project)})
    runner.resolve()
    assert runner.proxy_node().settings.max_servers == 32
    monkeypatch.setenv("FLOW_PROXY_MAX_SERVERS", "64")
    runner = module({"project_dir": str(project)})
    runner.resolve()
    assert runner.proxy_node().settings.max_servers == 64 and runner.sources["proxy_max_servers"] == "env:FLOW_PROXY_MAX_SERVERS"
    runner = module({"project_dir": str(project), "proxy_max_servers": 0})
    runner.resolve()
    with pytest.raises(FlowError, match=r"^proxy_max_servers=0 is not valid: use 1 to 500 \(servers of one color"):
        runner.proxy_node()


def test_proxy_access_log_reaches_the_proxy_settings_and_is_checked(project, monkeypatch, module):
    monkeypatch.setattr(module_base, "connect", Connections())
    runner = module({"project_dir": str(project)})
    runner.resolve()
    assert runner.proxy_node().settings.access_log == "errors"
    # An unquoted off in docker-flow.yml is YAML's false.
    (project / "docker-flow.yml").write_text("proxy_access_log: off\n")
    runner = module({"project_dir": str(project)})
    runner.resolve()
    assert runner.proxy_node().settings.access_log == "off"
    monkeypatch.setenv("FLOW_PROXY_ACCESS_LOG", "all")
    runner = module({"project_dir": str(project)})
    runner.resolve()
    assert runner.proxy_node().settings.access_log == "all"
    monkeypatch.setenv("FLOW_PROXY_ACCESS_LOG", "some")
    runner = module({"project_dir": str(project)})
    runner.resolve()
    with pytest.raises(FlowError, match=r"^proxy_access_log='some' is not valid: use one of all, errors, off\.$"):
        runner.proxy_node()


class Connections:
    """Records what the module asked to connect to, instead of connecting."""

    def __init__(self, warnings=()):
        self.calls, self.warnings = [], list(warnings)

    def __call__(self, host, cert_path, verify, timeout=60):
        self.calls.append((host, cert_path, verify, timeout))
        return types.SimpleNamespace(api=None, host=host), list(self.warnings)


def test_the_proxy_uses_its_own_engine_and_certificates_else_the_services(project, monkeypatch, tmp_path, module):
    connections = Connections()
    monkeypatch.setattr(module_base, "connect", connections)
    runner = module({"project_dir": str(project), "docker_host": "tcp://10.0.0.5:2376", "cert_path": str(tmp_path),
                     "tls_verify": True, "consul_dns": "10.0.0.2:8600", "proxy_http_port": 8080})
    runner.resolve()
    node = runner.proxy_node()
    assert connections.calls[-1] == ("tcp://10.0.0.5:2376", str(tmp_path), True, 60)
    assert (node.name, node.image, node.master_port) == ("dockerflow-proxy", "haproxy:3.0", 9998)
    assert (node.settings.consul_dns_address, node.settings.consul_dns_port, node.settings.http_port) == ("10.0.0.2", 8600, 8080)
    runner = module({"project_dir": str(project), "docker_host": "tcp://10.0.0.5:2376", "cert_path": str(tmp_path),
                     "proxy_docker_host": "tcp://10.0.0.9:2376", "proxy_tls_verify": False})
    runner.resolve()
    runner.proxy_node()
    # the service's certificates are for its own engine, not the proxy's
    assert connections.calls[-1] == ("tcp://10.0.0.9:2376", None, False, 60)


def test_proxy_warnings_name_the_proxy_parameters_and_a_bad_dns_address_is_refused(project, monkeypatch, capsys, module):
    monkeypatch.setattr(module_base, "connect", Connections(["docker_host tcp://10.0.0.9:2375 is plain TCP."]))
    runner = module({"project_dir": str(project), "proxy_docker_host": "tcp://10.0.0.9:2375",
                     "proxy_listen_address": "0.0.0.0", "proxy_stats_address": "0.0.0.0"})
    code, result = exit_result(capsys, runner, lambda r: r.proxy_node() and {"changed": False})
    assert code == 0 and "proxy_docker_host tcp://10.0.0.9:2375 is plain TCP." in result["warnings"]
    assert any("stats" in warning for warning in result["warnings"][1:])
    runner = module({"project_dir": str(project), "consul_dns": "consul:dns"})
    runner.resolve()
    with pytest.raises(FlowError, match=r"^consul_dns='consul:dns' is not valid: use HOST:PORT\.$"):
        runner.proxy_node()


def test_a_flow_gets_the_resolved_options_and_defaults(project, monkeypatch, module):
    monkeypatch.setattr(FlowModule, "consul_client", lambda self: "consul-client")
    runner = module({"project_dir": str(project), "scale": "+1", "lock_ttl": 60}, check_mode=True)
    runner.resolve()
    flow = runner.flow(engine=False, color="green")
    settings = flow.settings
    assert (settings.service, settings.project, settings.target, settings.scale) == ("books-ms-app", "books_ms", "app", "+1")
    assert (settings.health_timeout, settings.lock_timeout, settings.lock_ttl, settings.keep_releases) == (120, 300, 60, 1)
    assert settings.color == "green"
    assert flow.check_mode and flow.backend is None and runner.current_flow is flow


def test_env_files_reach_the_flow_from_the_parameter_or_flow_env_files(project, monkeypatch, module):
    monkeypatch.setattr(FlowModule, "consul_client", lambda self: "consul-client")
    runner = module({"project_dir": str(project), "env_files": ["a.env", "b.env"]}, check_mode=True)
    runner.resolve()
    assert runner.flow(engine=False).settings.env_files == ["a.env", "b.env"]
    monkeypatch.setenv("FLOW_ENV_FILES", "c.env,d.env")
    runner = module({"project_dir": str(project)}, check_mode=True)
    runner.resolve()
    assert runner.flow(engine=False).settings.env_files == ["c.env", "d.env"]
