# -*- coding: utf-8 -*-
"""Options: module parameter > FLOW_* environment > docker-flow.yml > default."""

from __future__ import annotations

import re

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import config
from ansible_collections.dockerflow.flow.plugins.module_utils.config import (
    DEFAULT_FLOW_FILE,
    OPTIONS,
    convert,
    read_flow_file,
    resolve,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.scale import ScaleRequest, parse_scale

ALL = sorted(OPTIONS)


def resolve_one(name, params=None, environ=None, file_values=None):
    values, sources = resolve(params or {}, [name], environ=environ or {}, file_values=file_values)
    return values[name], sources[name]


# --- precedence -----------------------------------------------------------------------------


def test_parameter_beats_env_file_and_default():
    value, source = resolve_one(
        "target", {"target": "web"}, {"FLOW_TARGET": "api"}, {"target": "worker"}
    )
    assert (value, source) == ("web", "parameter")


def test_env_beats_file_and_default():
    value, source = resolve_one("target", {"target": None}, {"FLOW_TARGET": "api"}, {"target": "worker"})
    assert (value, source) == ("api", "env:FLOW_TARGET")


def test_file_beats_default():
    assert resolve_one("target", {}, {}, {"target": "worker"}) == ("worker", "file")


def test_default_last():
    assert resolve_one("target") == ("app", "default")
    assert resolve_one("compose_path") == ("docker-compose.yml", "default")
    assert resolve_one("blue_green") == (True, "default")
    assert resolve_one("project") == (None, "default")


def test_false_parameter_is_not_unset():
    assert resolve_one("blue_green", {"blue_green": False}, {"FLOW_BLUE_GREEN": "true"}) == (False, "parameter")


def test_empty_env_value_is_ignored():
    assert resolve_one("target", {}, {"FLOW_TARGET": ""}, {"target": "worker"}) == ("worker", "file")


def test_false_file_value_is_kept():
    assert resolve_one("blue_green", {}, {}, {"blue_green": False}) == (False, "file")


def test_every_option_resolves_to_its_default_with_nothing_set():
    values, sources = resolve({}, ALL, environ={})
    for name in ALL:
        assert values[name] == OPTIONS[name].default
        assert sources[name] == "default"


def test_default_lists_are_copies():
    values, _sources = resolve({}, ["side_targets", "flow"], environ={})
    values["side_targets"].append("db")
    values["flow"].append("scale")
    again, _sources = resolve({}, ["side_targets", "flow"], environ={})
    assert again == {"side_targets": [], "flow": ["deploy"]}


def test_only_requested_names_are_resolved():
    values, sources = resolve({}, ["target"], environ={"FLOW_SCALE": "3"})
    assert values == {"target": "app"} and sources == {"target": "default"}


def test_uses_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("FLOW_TARGET", "from-os-environ")
    values, sources = resolve({}, ["target"])
    assert values["target"] == "from-os-environ"
    assert sources["target"] == "env:FLOW_TARGET"


# --- environment ----------------------------------------------------------------------------


def test_seed_env_names():
    environ = {
        "FLOW_HOST": "tcp://10.0.0.1:2376",
        "FLOW_SCALE": "+2",
        "FLOW": "deploy,stop-old",
        "FLOW_SIDE_TARGETS": "db, cache ,,",
        "FLOW_SERVICE_PATH": "/api/v1,/api/v2",
        "FLOW_PROXY_HOST": "proxy.example.com",
        "FLOW_BLUE_GREEN": "false",
        "FLOW_HEALTH_TIMEOUT": " 30 ",
        "FLOW_PROJECT": "books",
    }
    names = ["docker_host", "scale", "flow", "side_targets", "service_path", "proxy_host", "blue_green",
             "health_timeout", "project"]
    values, sources = resolve({}, names, environ=environ)
    assert values == {
        "docker_host": "tcp://10.0.0.1:2376",
        "scale": "+2",
        "flow": ["deploy", "stop-old"],
        "side_targets": ["db", "cache"],
        "service_path": ["/api/v1", "/api/v2"],
        "proxy_host": "proxy.example.com",
        "blue_green": False,
        "health_timeout": 30,
        "project": "books",
    }
    assert sources["flow"] == "env:FLOW"
    assert sources["side_targets"] == "env:FLOW_SIDE_TARGETS"
    assert parse_scale(values["scale"]) == ScaleRequest(2, True)


def test_docker_host_falls_back_to_docker_host_env():
    assert resolve_one("docker_host", environ={"DOCKER_HOST": "unix:///tmp/d.sock"}) == (
        "unix:///tmp/d.sock",
        "env:DOCKER_HOST",
    )


def test_flow_host_beats_docker_host_env():
    environ = {"FLOW_HOST": "tcp://a:2375", "DOCKER_HOST": "tcp://b:2375"}
    assert resolve_one("docker_host", environ=environ) == ("tcp://a:2375", "env:FLOW_HOST")


def test_docker_host_env_beats_file():
    assert resolve_one("docker_host", environ={"DOCKER_HOST": "tcp://b:2375"}, file_values={"docker_host": "tcp://c"})[
        1
    ] == "env:DOCKER_HOST"


@pytest.mark.parametrize(
    "env_name, option",
    [
        ("DOCKER_CERT_PATH", "cert_path"),
        ("DOCKER_TLS_VERIFY", "tls_verify"),
        ("CONSUL_HTTP_ADDR", "consul_address"),
        ("CONSUL_HTTP_TOKEN", "consul_token"),
        ("CONSUL_CACERT", "consul_ca_cert"),
    ],
)
def test_tool_env_fallbacks(env_name, option):
    raw = "1" if option == "tls_verify" else "value"
    value, source = resolve_one(option, environ={env_name: raw})
    assert source == "env:" + env_name
    assert value == (True if option == "tls_verify" else "value")


@pytest.mark.parametrize(
    "raw, expected",
    [("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False),
     ("on", True), ("off", False), ("TRUE", True), (" No ", False)],
)
def test_env_booleans(raw, expected):
    assert resolve_one("blue_green", environ={"FLOW_BLUE_GREEN": raw}) == (expected, "env:FLOW_BLUE_GREEN")


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "tru", "-1"])
def test_bad_env_boolean_names_the_variable(raw):
    with pytest.raises(FlowError) as info:
        resolve_one("blue_green", environ={"FLOW_BLUE_GREEN": raw})
    assert str(info.value) == "FLOW_BLUE_GREEN=%r is not a boolean: use true or false." % raw


def test_env_is_not_read_when_a_parameter_is_set():
    # The parameter wins, so the environment is not even read.
    assert resolve_one("blue_green", {"blue_green": True}, {"FLOW_BLUE_GREEN": "maybe"}) == (True, "parameter")


@pytest.mark.parametrize("raw", ["ten", "1.5", "3x"])
def test_bad_env_int_names_the_variable(raw):
    with pytest.raises(FlowError, match=r"^FLOW_HEALTH_TIMEOUT=%r is not a whole number\.$" % raw):
        resolve_one("health_timeout", environ={"FLOW_HEALTH_TIMEOUT": raw})


def test_env_scale_is_passed_through_raw():
    assert resolve_one("scale", environ={"FLOW_SCALE": "-1"}) == ("-1", "env:FLOW_SCALE")


# --- convert --------------------------------------------------------------------------------


def test_convert_kinds():
    assert convert(OPTIONS["blue_green"], True, "x") is True
    assert convert(OPTIONS["health_port"], 8080, "x") == 8080
    assert convert(OPTIONS["flow"], ("deploy", "scale"), "x") == ["deploy", "scale"]
    assert convert(OPTIONS["flow"], "deploy, scale", "x") == ["deploy", "scale"]
    assert convert(OPTIONS["target"], 123, "x") == "123"
    assert convert(OPTIONS["scale"], 3, "x") == 3


@pytest.mark.parametrize("value", [True, False])
def test_convert_int_rejects_booleans(value):
    with pytest.raises(FlowError, match=r"^src=%r is not a whole number\.$" % value):
        convert(OPTIONS["health_port"], value, "src")


def test_convert_list_rejects_scalars_from_file():
    with pytest.raises(FlowError, match=r"^src=5 is not a list"):
        convert(OPTIONS["side_targets"], 5, "src")


def test_convert_list_from_env_accepts_anything_as_text():
    assert convert(OPTIONS["side_targets"], 5, "src", from_env=True) == ["5"]


def test_convert_list_rejects_nested_items():
    with pytest.raises(FlowError, match=r"^src has an item \{'a': 1\} that is not a plain value\.$"):
        convert(OPTIONS["side_targets"], ["db", {"a": 1}], "src")


@pytest.mark.parametrize("value", [{"a": 1}, ["a"]])
def test_convert_str_rejects_collections(value):
    with pytest.raises(FlowError, match=r"is not a single value\.$"):
        convert(OPTIONS["target"], value, "src")


# --- docker-flow.yml -------------------------------------------------------------------------


def test_seed_flow_file(write_file):
    path = write_file(
        DEFAULT_FLOW_FILE,
        """\
        target: app
        side_targets:
          - db
        blue_green: true
        service_path:
          - /api/v1/books
          - /api/v1/authors
        host: tcp://localhost:2375
        proxy_host: proxy
        scale: 2
        health_timeout: "60"
        flow: deploy
        """,
    )
    assert read_flow_file(path) == {
        "target": "app",
        "side_targets": ["db"],
        "blue_green": True,
        "service_path": ["/api/v1/books", "/api/v1/authors"],
        "docker_host": "tcp://localhost:2375",
        "proxy_host": "proxy",
        "scale": "2",  # numbers stay text: scale: +2 must not lose its sign
        "health_timeout": 60,
        "flow": ["deploy"],
    }


def test_docker_host_key_is_an_alias_of_host(write_file):
    assert read_flow_file(write_file("f.yml", "docker_host: unix:///x.sock\n")) == {"docker_host": "unix:///x.sock"}


def test_file_values_take_part_in_resolution(write_file):
    file_values = read_flow_file(write_file("f.yml", "target: worker\nside_targets: [db, cache]\nblue_green: no\n"))
    values, sources = resolve(
        {"target": None}, ["target", "side_targets", "blue_green"], environ={"FLOW_SIDE_TARGETS": "redis"},
        file_values=file_values,
    )
    assert values == {"target": "worker", "side_targets": ["redis"], "blue_green": False}
    assert sources == {"target": "file", "side_targets": "env:FLOW_SIDE_TARGETS", "blue_green": "file"}


def test_missing_file_is_fine(tmp_path):
    assert read_flow_file(str(tmp_path / "docker-flow.yml")) == {}
    assert read_flow_file(None) == {}
    assert read_flow_file("") == {}


def test_missing_file_is_an_error_when_required(tmp_path):
    path = str(tmp_path / "custom-flow.yml")
    with pytest.raises(FlowError, match=r"^flow_file %s does not exist\.$" % re.escape(path)):
        read_flow_file(path, required=True)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_gives_nothing(write_file, text):
    assert read_flow_file(write_file("f.yml", text), required=True) == {}


@pytest.mark.parametrize(
    "text, line",
    [
        ("target: app\nside_targets: [db\n", 3),
        ("target: app\n  bad: indent\n", 2),
        ("target: app\nflow: \"unterminated\n", 3),
        ("target: app\n\tblue_green: true\n", 2),
    ],
)
def test_malformed_yaml_names_file_and_line(write_file, text, line):
    path = write_file("docker-flow.yml", text, dedent=False)
    with pytest.raises(FlowError) as info:
        read_flow_file(path)
    message = str(info.value)
    assert message.startswith("%s line %d column " % (path, line))
    assert "is not valid YAML" in message
    assert "\n" not in message


@pytest.mark.parametrize("text, kind", [("- target\n- app\n", "list"), ("just text\n", "str"), ("42\n", "str")])
def test_non_mapping_file(write_file, text, kind):
    path = write_file("f.yml", text)
    with pytest.raises(FlowError) as info:
        read_flow_file(path)
    assert str(info.value) == "%s must be a mapping of option names to values, not %s." % (path, kind)


def test_unknown_key_is_named(write_file):
    path = write_file("f.yml", "target: app\nbluegreen: true\n")
    with pytest.raises(FlowError) as info:
        read_flow_file(path)
    message = str(info.value)
    assert message.startswith("%s: unknown option 'bluegreen'. Known options: " % path)
    assert "blue_green" in message and "host" in message


def test_bad_value_in_file_names_file_and_key(write_file):
    path = write_file("f.yml", "blue_green: maybe\n")
    with pytest.raises(FlowError) as info:
        read_flow_file(path)
    assert str(info.value) == "%s: blue_green='maybe' is not a boolean: use true or false." % path


def test_list_option_with_scalar_value_in_file(write_file):
    path = write_file("f.yml", "service_path: 5\nside_targets: {a: 1}\n")
    with pytest.raises(FlowError, match=r": side_targets=\{'a': '1'\} is not a list"):
        read_flow_file(path)


def test_list_option_with_one_plain_value_in_file(write_file):
    path = write_file("f.yml", "service_path: /api\n")
    assert read_flow_file(path)["service_path"] == ["/api"]


def test_unreadable_file(tmp_path):
    # A directory exists but cannot be read as a file.
    with pytest.raises(FlowError, match=r"^Cannot read %s: " % re.escape(str(tmp_path))):
        read_flow_file(str(tmp_path))


def test_every_seed_file_key_maps_to_an_option():
    for key, name in config._FILE_KEYS.items():
        assert key in OPTIONS[name].file_keys


def test_empty_value_in_file_is_not_the_string_none(write_file):
    path = write_file("f.yml", "proxy_host:\n")
    try:
        values = read_flow_file(path)
    except FlowError:
        return  # rejecting it is fine too
    assert values.get("proxy_host") in (None,)


def test_relative_scale_in_file_stays_relative(write_file):
    file_values = read_flow_file(write_file("f.yml", "scale: +2\n"))
    values, _sources = resolve({}, ["scale"], environ={}, file_values=file_values)
    assert parse_scale(values["scale"]) == ScaleRequest(2, True)
