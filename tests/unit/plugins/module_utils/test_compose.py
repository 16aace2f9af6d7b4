# -*- coding: utf-8 -*-
"""Reading Compose files into ServiceSpecs (no engine involved)."""

from __future__ import annotations

import os
import re
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import (
    SUPPORTED_SERVICE_KEYS,
    DeploySpec,
    MountSpec,
    PortSpec,
    ServiceSpec,
    interpolate,
    load_project,
    parse_bytes,
    parse_duration_ns,
    parse_port,
    read_dotenv,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

NS = 10**9


def app(compose, body="", top="", environ=None, service="app"):
    """Load a file with one service ``app`` (image app:1) plus ``body`` lines; return its spec."""
    text = "services:\n  app:\n    image: app:1\n" + _indent(body, 4) + top
    return compose(text, environ=environ).service(service)


def _indent(text, width):
    return textwrap.indent(textwrap.dedent(text), " " * width) if text else ""


# --- minimal file and defaults ---------------------------------------------------------------


def test_minimal_service(compose):
    project = compose("services:\n  app:\n    image: app:1\n")
    assert project.name is None
    assert sorted(project.services) == ["app"]
    spec = project.service("app")
    assert spec == ServiceSpec(name="app", image="app:1", networks={"default": {"aliases": []}})
    assert spec.ports == [] and spec.mounts == [] and spec.healthcheck is None


def test_project_name_from_file_and_argument(compose):
    assert compose("name: books\nservices:\n  app:\n    image: a\n").name == "books"
    assert compose("name: books\nservices:\n  app:\n    image: a\n", project_name="other").name == "other"


def test_paths_are_absolute(tmp_path, write_file, monkeypatch):
    write_file("sub/docker-compose.yml", "services:\n  app:\n    image: a\n")
    monkeypatch.chdir(tmp_path)
    project = load_project("sub/docker-compose.yml", environ={})
    assert project.path == str(tmp_path / "sub" / "docker-compose.yml")
    assert project.directory == str(tmp_path / "sub")


def test_scalar_fields(compose):
    spec = app(
        compose,
        """\
        command: python -m http.server "8080"
        entrypoint: ["/bin/sh", "-c"]
        container_name: my-app
        hostname: apphost
        user: 1000
        working_dir: /srv
        stop_signal: SIGINT
        stop_grace_period: 1m30s
        restart: on-failure:3
        read_only: true
        init: true
        cap_add: [NET_ADMIN]
        cap_drop: [ALL]
        extra_hosts: ["db:10.0.0.2"]
        tmpfs: /run
        expose: [9000, "9001"]
        labels:
          a: 1
          b: true
        logging:
          driver: json-file
        pull_policy: always
        deploy:
          replicas: 2
        x-notes: ignored
        """,
    )
    assert spec.command == ["python", "-m", "http.server", "8080"]
    assert spec.entrypoint == ["/bin/sh", "-c"]
    assert spec.container_name == "my-app"
    assert spec.hostname == "apphost"
    assert spec.user == "1000"
    assert spec.working_dir == "/srv"
    assert spec.stop_signal == "SIGINT"
    assert spec.stop_grace_period == 90
    assert spec.restart == "on-failure:3"
    assert spec.read_only is True and spec.init is True
    assert spec.cap_add == ["NET_ADMIN"] and spec.cap_drop == ["ALL"]
    assert spec.extra_hosts == ["db:10.0.0.2"]
    assert spec.tmpfs == ["/run"]
    assert spec.expose == ["9000", "9001"]
    assert spec.labels == {"a": "1", "b": "true"}
    assert spec.logging == {"driver": "json-file"}
    assert spec.pull_policy == "always"
    assert spec.deploy == DeploySpec(replicas=2)


def test_labels_list_form(compose):
    assert app(compose, "labels: [a=1, b=x=y]\n").labels == {"a": "1", "b": "x=y"}


@pytest.mark.parametrize("restart", ["no", "always", "unless-stopped", "on-failure"])
def test_restart_policies(compose, restart):
    assert app(compose, 'restart: "%s"\n' % restart).restart == restart


def test_bad_restart_policy(compose):
    with pytest.raises(FlowError, match=r"service app: restart='sometimes' is not one of no, always"):
        app(compose, "restart: sometimes\n")


def test_unsplittable_command(compose):
    with pytest.raises(FlowError, match=r"service app: command: cannot split 'echo \"oops'"):
        app(compose, "command: 'echo \"oops'\n")


def test_command_of_wrong_type(compose):
    with pytest.raises(FlowError, match=r"service app: command must be a string or a list\.$"):
        app(compose, "command: {a: 1}\n")


def test_unknown_deploy_key(compose):
    with pytest.raises(FlowError, match=r"service app: deploy: key\(s\) secrets are not supported\. Supported: endpoint_mode,"):
        app(compose, "deploy:\n  secrets: []\n")


# --- unsupported keys and structural errors ----------------------------------------------------


@pytest.mark.parametrize("key", ["external_links", "links"])
def test_unsupported_service_key_is_named(compose, key):
    with pytest.raises(FlowError) as info:
        app(compose, "%s: x\n" % key)
    message = str(info.value)
    assert re.search(r"service app: key\(s\) %s are not supported" % key, message)
    assert "Supported: " in message


def test_all_unsupported_keys_are_listed(compose):
    with pytest.raises(FlowError, match=r"key\(s\) external_links, links are not supported"):
        app(compose, "links: [d]\nexternal_links: [e]\n")


@pytest.mark.parametrize("key", ["services_extra"])
def test_unsupported_top_level_key(compose, key):
    with pytest.raises(FlowError) as info:
        compose("services:\n  app:\n    image: a\n%s: {}\n" % key)
    assert "top-level key(s) %s are not supported" % key in str(info.value)
    assert "supported: configs, include, name, networks, secrets, services, version, volumes" in str(info.value)


def test_extension_fields_are_allowed(compose):
    project = compose("x-common: &c\n  image: a\nversion: '3.8'\nservices:\n  app:\n    <<: *c\n")
    assert project.service("app").image == "a"


def test_no_services_section(compose):
    with pytest.raises(FlowError, match=r"docker-compose\.yml has no services section\.$"):
        compose("version: '3'\n")


def test_empty_services_section(compose):
    project = compose("services:\n")
    with pytest.raises(FlowError, match=r"Services: none\.$"):
        project.service("app")


def test_services_must_be_a_mapping(compose):
    with pytest.raises(FlowError, match=r"services must be a mapping\.$"):
        compose("services:\n  - app\n")


def test_service_must_be_a_mapping(compose):
    with pytest.raises(FlowError, match=r"service 'app' must be a mapping\.$"):
        compose("services:\n  app: nginx\n")


def test_bad_service_name(compose):
    with pytest.raises(FlowError, match=r"service name '-app' is not valid\.$"):
        compose("services:\n  '-app':\n    image: a\n")


@pytest.mark.parametrize("body", ["", "image: ''\n", "image: [a]\n"])
def test_missing_image(compose, body):
    project = compose("services:\n  app:\n    restart: always\n" + _indent(body, 4))
    with pytest.raises(FlowError, match=r"docker-compose\.yml: service app has neither image nor build\.$"):
        project.service("app")


def test_unknown_service_lists_services(compose):
    project = compose("services:\n  web:\n    image: a\n  db:\n    image: b\n")
    with pytest.raises(FlowError) as info:
        project.service("app")
    assert str(info.value) == "target 'app' is not a service of %s. Services: db, web." % project.path


def test_unknown_service_names_the_parameter(compose):
    project = compose("services:\n  web:\n    image: a\n")
    with pytest.raises(FlowError, match=r"^side_targets 'db' is not a service"):
        project.service("db", parameter="side_targets")


def test_missing_compose_file(tmp_path):
    path = str(tmp_path / "docker-compose.yml")
    with pytest.raises(FlowError) as info:
        load_project(path, environ={})
    assert str(info.value) == "compose_path: compose file %s does not exist." % path


def test_compose_path_is_a_directory(tmp_path):
    with pytest.raises(FlowError, match=r"does not exist\.$"):
        load_project(str(tmp_path), environ={})


@pytest.mark.parametrize(
    "text, line",
    [
        ("services:\n  app:\n    image: a\n    ports: [80\n", 5),
        ("services:\n  app:\n    image: a\n   command: x\n", 4),
        ("services:\n  app:\n\timage: a\n", 3),
    ],
)
def test_bad_yaml_names_file_and_line(compose, text, line):
    with pytest.raises(FlowError) as info:
        compose(text)
    message = str(info.value)
    assert re.match(r"^/.*docker-compose\.yml line %d column \d+ is not valid YAML: " % line, message), message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(compose, text):
    with pytest.raises(FlowError, match=r"is not a Compose file: its top level must be a mapping\.$"):
        compose(text)


# --- ports ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, expected",
    [
        ("8080", PortSpec(8080)),
        (8080, PortSpec(8080)),
        ("9000:8080", PortSpec(8080, host_port=9000)),
        ("127.0.0.1:9000:8080/udp", PortSpec(8080, "udp", "127.0.0.1", 9000)),
        ("127.0.0.1::8080", PortSpec(8080, host_ip="127.0.0.1")),
        ("8080/sctp", PortSpec(8080, "sctp")),
        (" 53:53/udp ", PortSpec(53, "udp", None, 53)),
        ("[::1]:9000:80", PortSpec(80, host_ip="::1", host_port=9000)),
        ("[::1]::80/udp", PortSpec(80, "udp", "::1", None)),
        ("1:65535", PortSpec(65535, host_port=1)),
        ({"target": 80}, PortSpec(80)),
        ({"target": 80, "published": 8080, "protocol": "udp", "host_ip": "0.0.0.0", "mode": "host"},
         PortSpec(80, "udp", "0.0.0.0", 8080, "host")),
        ({"target": "80", "published": "8080"}, PortSpec(80, host_port=8080)),
        ({"target": 80, "published": ""}, PortSpec(80)),
    ],
)
def test_parse_port(item, expected):
    assert parse_port(item, "w") == expected


def test_port_key():
    assert PortSpec(8080).key == "8080/tcp"
    assert PortSpec(53, "udp").key == "53/udp"


@pytest.mark.parametrize("item", ["8000-8010", "9000-9010:8000-8010", "9000-9010:8000", "127.0.0.1:9000-9001:80"])
def test_port_ranges_are_rejected(item):
    with pytest.raises(FlowError, match=r"^w: port ranges like %s are not supported; list each port\.$" % re.escape(repr(item))):
        parse_port(item, "w")


@pytest.mark.parametrize("item, protocol", [("80/http", "http"), ("80/TCP", "TCP"), ("80/", "")])
def test_bad_protocol_is_rejected(item, protocol):
    with pytest.raises(FlowError) as info:
        parse_port(item, "w")
    assert str(info.value) == "w: port %r has an unknown protocol %r (tcp, udp, sctp)." % (item, protocol)


def test_bad_protocol_is_rejected_in_long_syntax():
    with pytest.raises(FlowError, match=r"unknown protocol"):
        parse_port({"target": 80, "protocol": "http"}, "w")


@pytest.mark.parametrize("item, number", [("0", 0), ("70000", 70000), ("65536:80", 65536), ({"target": 0}, 0),
                                          ({"target": 80, "published": 99999}, 99999)])
def test_out_of_range_ports(item, number):
    with pytest.raises(FlowError, match=r"^w: port %d is outside 1-65535\.$" % number):
        parse_port(item, "w")


@pytest.mark.parametrize("item", ["http", "abc:80", "80.5", "9000:"])
def test_non_numeric_ports(item):
    with pytest.raises(FlowError, match=r"is not a port number\.$"):
        parse_port(item, "w")


@pytest.mark.parametrize("item", ["1:2:3:4", "a:b:c:80"])
def test_too_many_port_parts(item):
    with pytest.raises(FlowError, match=r"is not \[HOST_IP:\]\[HOST_PORT:\]CONTAINER_PORT\[/PROTOCOL\]\.$"):
        parse_port(item, "w")


@pytest.mark.parametrize("item", [{"published": 80}, {"target": 80, "name": "web"}])
def test_bad_long_syntax_port(item):
    with pytest.raises(FlowError, match=r"needs target and only target, published, host_ip, protocol, mode\.$"):
        parse_port(item, "w")


@given(container=st.integers(1, 65535), host=st.none() | st.integers(1, 65535), protocol=st.sampled_from(["tcp", "udp", "sctp"]),
       host_ip=st.sampled_from([None, "127.0.0.1", "10.1.2.3"]))
def test_short_and_long_syntax_agree(container, host, protocol, host_ip):
    if host_ip and host is None:
        short = "%s::%d/%s" % (host_ip, container, protocol)
    elif host_ip:
        short = "%s:%d:%d/%s" % (host_ip, host, container, protocol)
    elif host is not None:
        short = "%d:%d/%s" % (host, container, protocol)
    else:
        short = "%d/%s" % (container, protocol)
    long = {"target": container, "protocol": protocol}
    if host is not None:
        long["published"] = host
    if host_ip:
        long["host_ip"] = host_ip
    expected = PortSpec(container, protocol, host_ip, host)
    assert parse_port(short, "w") == expected
    assert parse_port(long, "w") == expected


def test_ports_in_a_service(compose):
    spec = app(compose, 'ports:\n  - "8080"\n  - "9000:8080"\n  - target: 53\n    protocol: udp\n')
    assert spec.ports == [PortSpec(8080), PortSpec(8080, host_port=9000), PortSpec(53, "udp")]


def test_port_error_names_file_and_service(compose):
    with pytest.raises(FlowError) as info:
        app(compose, 'ports: ["8000-8001"]\n')
    assert re.match(r"^/.*docker-compose\.yml: service app: port ranges", str(info.value))


# --- volumes --------------------------------------------------------------------------------


def test_volumes(compose, tmp_path):
    spec = app(
        compose,
        """\
        volumes:
          - ./data:/data
          - ../shared:/shared:ro
          - /etc/hosts:/etc/hosts:ro,z
          - cache:/cache
          - cache:/cache2:rw
          - /anonymous
          - type: tmpfs
            target: /tmp
          - type: bind
            source: ./conf
            target: /conf
            read_only: true
          - type: volume
            source: cache
            target: /cache3
        """,
        top="volumes:\n  cache: {}\n",
    )
    assert spec.mounts == [
        MountSpec("bind", "/data", str(tmp_path / "data")),
        MountSpec("bind", "/shared", os.path.normpath(str(tmp_path / ".." / "shared")), True),
        MountSpec("bind", "/etc/hosts", "/etc/hosts", True),
        MountSpec("volume", "/cache", "cache"),
        MountSpec("volume", "/cache2", "cache"),
        MountSpec("volume", "/anonymous", None),
        MountSpec("tmpfs", "/tmp", None),
        MountSpec("bind", "/conf", str(tmp_path / "conf"), True),
        MountSpec("volume", "/cache3", "cache"),
    ]


def test_home_relative_bind(compose, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = app(compose, "volumes: ['~/x:/x']\n")
    assert spec.mounts == [MountSpec("bind", "/x", str(tmp_path / "home" / "x"))]


def test_named_volume_must_be_declared(compose):
    with pytest.raises(FlowError) as info:
        app(compose, "volumes: ['data:/data']\n")
    assert "service app: named volume 'data' is not declared under the top-level volumes key." in str(info.value)


def test_named_volume_must_be_declared_in_long_syntax(compose):
    with pytest.raises(FlowError, match=r"named volume 'data' is not declared"):
        app(compose, "volumes:\n  - type: volume\n    source: data\n    target: /data\n")


@pytest.mark.parametrize("item", ["./data:data", "relative", "cache:"])
def test_volume_target_must_be_absolute(compose, item):
    with pytest.raises(FlowError, match=r"needs an absolute container path\.$"):
        app(compose, "volumes: ['%s']\n" % item, top="volumes:\n  cache:\n")


def test_volume_unknown_mode(compose):
    with pytest.raises(FlowError, match=r"volume './d:/d:ro,bogus' has unknown mode\(s\) bogus\.$"):
        app(compose, "volumes: ['./d:/d:ro,bogus']\n")


def test_volume_too_many_parts(compose):
    with pytest.raises(FlowError, match=r"is not SOURCE:TARGET\[:MODE\]\.$"):
        app(compose, "volumes: ['./a:/b:ro:extra']\n")


def test_volume_unsupported_type(compose):
    with pytest.raises(FlowError, match=r"volume type 'npipe' is not supported \(bind, volume, tmpfs\)\.$"):
        app(compose, "volumes:\n  - type: npipe\n    source: x\n    target: /x\n")


def test_bind_without_source_is_a_flow_error(compose):
    with pytest.raises(FlowError):
        app(compose, "volumes:\n  - type: bind\n    target: /x\n")


def test_top_level_volumes_and_networks(compose):
    project = compose(
        """\
        services:
          app:
            image: a
        volumes:
          data:
          logs:
            external: true
          old:
            external:
              name: legacy-old
          named:
            name: custom
            driver: local
            driver_opts: {type: none}
            labels: [a=b]
        networks:
          front:
            driver: bridge
          shared:
            external: true
            name: shared-net
        """
    )
    assert project.volumes == {
        "data": {"name": None, "external": False, "driver": None, "driver_opts": {}, "labels": {}},
        "logs": {"name": "logs", "external": True, "driver": None, "driver_opts": {}, "labels": {}},
        "old": {"name": "legacy-old", "external": True, "driver": None, "driver_opts": {}, "labels": {}},
        "named": {"name": "custom", "external": False, "driver": "local", "driver_opts": {"type": "none"},
                  "labels": {"a": "b"}},
    }
    assert project.networks == {
        "front": {"name": None, "external": False, "driver": "bridge", "driver_opts": {}, "labels": {}, "ipam": None},
        "shared": {"name": "shared-net", "external": True, "driver": None, "driver_opts": {}, "labels": {}, "ipam": None},
    }


@pytest.mark.parametrize(
    "top, message",
    [
        ("volumes: [a]\n", r"top-level volumes must be a mapping\.$"),
        ("networks:\n  front: bridge\n", r"networks\.front must be a mapping\.$"),
        ("volumes:\n  data:\n    size: 1G\n", r"volumes\.data: key\(s\) size are not supported\.$"),
    ],
)
def test_bad_top_level_resources(compose, top, message):
    with pytest.raises(FlowError, match=message):
        compose("services:\n  app:\n    image: a\n" + top)


# --- networks of a service ------------------------------------------------------------------


def test_service_networks(compose):
    spec = app(compose, "networks:\n  front:\n    aliases: [web]\n  default:\n", top="networks:\n  front:\n")
    assert spec.networks == {"front": {"aliases": ["web"]}, "default": {"aliases": []}}
    assert app(compose, "networks: [front]\n", top="networks:\n  front:\n").networks == {"front": {"aliases": []}}


def test_service_network_must_be_declared(compose):
    with pytest.raises(FlowError, match=r"network 'back' is not declared under the top-level networks key\.$"):
        app(compose, "networks: [back]\n")


def test_service_network_options(compose):
    with pytest.raises(FlowError, match=r"networks\.front key\(s\) driver_opts are not supported\.$"):
        app(compose, "networks:\n  front:\n    driver_opts: {a: b}\n", top="networks:\n  front:\n")
    with pytest.raises(FlowError, match=r"networks must be a list or a mapping\.$"):
        app(compose, "networks: front\n", top="networks:\n  front:\n")


# --- environment, env_file, .env and interpolation ---------------------------------------------


def test_environment_list_and_dict(compose):
    assert app(compose, "environment: [A=1, B=x=y, C=]\n").environment == {"A": "1", "B": "x=y", "C": ""}
    assert app(compose, "environment:\n  A: 1\n  B: true\n  C:\n  D: x\n").environment == {
        "A": "1",
        "B": "true",
        "C": "",
        "D": "x",
    }


def test_environment_must_be_list_or_mapping(compose):
    with pytest.raises(FlowError, match=r"environment must be a list or a mapping\.$"):
        app(compose, "environment: A=1\n")


def test_environment_pass_through_uses_the_given_environment(compose, monkeypatch):
    monkeypatch.delenv("DF_UNIT_PASSTHROUGH", raising=False)
    spec = app(compose, "environment: [DF_UNIT_PASSTHROUGH]\n", environ={"DF_UNIT_PASSTHROUGH": "given"})
    assert spec.environment == {"DF_UNIT_PASSTHROUGH": "given"}


def test_env_file(compose, write_file):
    write_file(
        "app.env",
        """\
        # comment

        A=from-file
        export B = spaced
        C="double quoted"
        D='single quoted'
        E=x=y
        F=
        """,
    )
    write_file("more/extra.env", "A=from-second-file\nG=g\n")
    spec = app(compose, "env_file: [app.env, {path: more/extra.env}]\nenvironment:\n  G: from-environment\n")
    assert spec.environment == {
        "A": "from-second-file",
        "B": "spaced",
        "C": "double quoted",
        "D": "single quoted",
        "E": "x=y",
        "F": "",
        "G": "from-environment",
    }


def test_env_file_single_string(compose, write_file):
    write_file("app.env", "A=1\n")
    assert app(compose, "env_file: app.env\n").environment == {"A": "1"}


def test_missing_env_file(compose, tmp_path):
    with pytest.raises(FlowError, match=r"^Cannot read env file %s: " % re.escape(str(tmp_path / "nope.env"))):
        app(compose, "env_file: nope.env\n")


def test_bad_env_file_line(compose, write_file):
    path = write_file("app.env", "A=1\nnot a pair\n")
    with pytest.raises(FlowError) as info:
        app(compose, "env_file: app.env\n")
    assert str(info.value) == "%s line 2: expected KEY=VALUE, got 'not a pair'." % path


def test_read_dotenv_keeps_unbalanced_quotes(write_file):
    assert read_dotenv(write_file("x.env", "A=\"x\nB='\n")) == {"A": '"x', "B": "'"}


def test_dotenv_interpolation(compose, write_file):
    write_file(".env", "TAG=2.0\nPORT=9000\nFROM_ENV=dotenv\n")
    spec = app(
        compose,
        """\
        environment:
          TAG: ${TAG}
          PORT: $PORT
          WHO: ${FROM_ENV}
        ports: ["${PORT}:8080"]
        """,
        environ={"FROM_ENV": "environ"},
    )
    assert spec.environment == {"TAG": "2.0", "PORT": "9000", "WHO": "environ"}  # environ beats .env
    assert spec.ports == [PortSpec(8080, host_port=9000)]


def test_image_interpolation(compose):
    project = compose("services:\n  app:\n    image: app:${TAG:-latest}\n", environ={"TAG": "3"})
    assert project.service("app").image == "app:3"
    project = compose("services:\n  app:\n    image: app:${TAG:-latest}\n", environ={})
    assert project.service("app").image == "app:latest"


def test_bad_dotenv(compose, write_file):
    write_file(".env", "OK=1\nnot a pair\n")  # a bare name is Compose's "from the environment"; a space is not
    with pytest.raises(FlowError, match=r"\.env line 2: expected KEY=VALUE"):
        compose("services:\n  app:\n    image: a\n")


@pytest.mark.parametrize(
    "text, variables, expected",
    [
        ("${A}", {"A": "1"}, "1"),
        ("$A", {"A": "1"}, "1"),
        ("$A-$B", {"A": "1", "B": "2"}, "1-2"),
        ("${A}", {}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A:-d}", {"A": "v"}, "v"),
        ("${A-d}", {}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:-}", {}, ""),
        ("${A:-a b:c}", {}, "a b:c"),
        ("${A?err}", {"A": ""}, ""),
        ("${A:?err}", {"A": "v"}, "v"),
        ("$$", {}, "$"),
        ("$${A}", {"A": "1"}, "${A}"),
        ("$$A", {"A": "1"}, "$A"),
        ("cost: $$5", {}, "cost: $5"),
        ("$1", {}, "$1"),
        ("no variables", {"A": "1"}, "no variables"),
    ],
)
def test_interpolate(text, variables, expected):
    assert interpolate(text, variables, "w") == expected


def test_interpolate_walks_containers_and_keeps_other_types():
    value = {"a": ["${A}", 1, True, None], "b": {"c": "${A}"}}
    assert interpolate(value, {"A": "x"}, "w") == {"a": ["x", 1, True, None], "b": {"c": "x"}}


@pytest.mark.parametrize(
    "text, variables, message",
    [
        ("${A:?A must be set}", {}, "w: variable A is required: A must be set"),
        ("${A:?A must be set}", {"A": ""}, "w: variable A is required: A must be set"),
        ("${A?}", {}, "w: variable A is required: not set"),
        ("${A:?}", {}, "w: variable A is required: not set"),
    ],
)
def test_required_variables(text, variables, message):
    with pytest.raises(FlowError) as info:
        interpolate(text, variables, "w")
    assert str(info.value) == message


def test_required_variable_message_with_a_dash():
    with pytest.raises(FlowError, match=r"variable A is required: must-be-set"):
        interpolate("${A:?must-be-set}", {}, "w")


@pytest.mark.parametrize("expression", ["${1A}", "${A B}", "${}", "${A.B}"])
def test_invalid_interpolation(expression):
    with pytest.raises(FlowError, match=r"^w: invalid interpolation"):
        interpolate(expression, {}, "w")


def test_required_variable_in_compose_file(compose):
    with pytest.raises(FlowError) as info:
        compose("services:\n  app:\n    image: app:${TAG:?set TAG}\n")
    assert re.match(r"^/.*docker-compose\.yml: variable TAG is required: set TAG$", str(info.value))


def test_dollar_escape_in_compose_file(compose):
    spec = app(compose, "command: echo $$HOME\n")
    assert spec.command == ["echo", "$HOME"]


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_text_without_dollar_is_unchanged(text):
    assert interpolate(text, {"A": "1"}, "w") == text


@given(st.text())
def test_doubled_dollars_survive_as_literal_text(text):
    # Escaping every $ as $$ must give back the text itself, whatever else it holds.
    assert interpolate(text.replace("$", "$$"), {"A": "1"}, "w") == text


# --- healthcheck ----------------------------------------------------------------------------


def test_healthcheck(compose):
    spec = app(
        compose,
        """\
        healthcheck:
          test: ["CMD", "curl", "-f", "http://localhost/"]
          interval: 1m30s
          timeout: 500ms
          start_period: 10
          retries: "3"
        """,
    )
    assert spec.healthcheck == {
        "test": ["CMD", "curl", "-f", "http://localhost/"],
        "interval": 90 * NS,
        "timeout": NS // 2,
        "start_period": 10 * NS,
        "retries": 3,
    }


def test_healthcheck_string_test_is_shell(compose):
    assert app(compose, "healthcheck:\n  test: curl -f localhost\n").healthcheck == {
        "test": ["CMD-SHELL", "curl -f localhost"]
    }


def test_healthcheck_overrides_without_test(compose):
    assert app(compose, "healthcheck:\n  interval: 2s\n").healthcheck == {"test": None, "interval": 2 * NS}


@pytest.mark.parametrize("body", ["disable: true\n", "disable: true\n  test: [CMD, x]\n", "test: [NONE]\n"])
def test_healthcheck_disabled(compose, body):
    spec = app(compose, "healthcheck:\n  " + body)
    assert spec.healthcheck == {"test": ["NONE"]}


@pytest.mark.parametrize(
    "body, message",
    [
        ("healthcheck: curl\n", r"healthcheck must be a mapping\.$"),
        ("healthcheck:\n  test: [SHELL, x]\n", r"healthcheck\.test must be a string or a list starting with CMD"),
        ("healthcheck:\n  test: []\n", r"healthcheck\.test must be a string or a list starting with CMD"),
        ("healthcheck:\n  test: {a: 1}\n", r"healthcheck\.test must be a string or a list"),
        (
            "healthcheck:\n  interval: soon\n",
            r"healthcheck\.interval='soon' is not a duration \(examples: 10s, 1m30s, 500ms\)\.$",
        ),
        ("healthcheck:\n  retries: many\n", r"healthcheck\.retries='many' is not a whole number\.$"),
        ("healthcheck:\n  command: x\n", r"healthcheck key\(s\) command are not supported\.$"),
    ],
)
def test_bad_healthcheck(compose, body, message):
    with pytest.raises(FlowError, match=message):
        app(compose, body)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10s", 10 * NS),
        ("1m30s", 90 * NS),
        ("1h", 3600 * NS),
        ("1h2m3s", 3723 * NS),
        ("500ms", NS // 2),
        ("250us", 250_000),
        ("1.5s", NS + NS // 2),
        (" 2s ", 2 * NS),
        (10, 10 * NS),
        (0.5, NS // 2),
        (None, None),
    ],
)
def test_parse_duration_ns(value, expected):
    assert parse_duration_ns(value, "w") == expected


@pytest.mark.parametrize("value", ["", "10", "10x", "s", "1m 30s", "-1s", True, "ten seconds"])
def test_bad_durations(value):
    with pytest.raises(FlowError, match=r"^w=%s is not a duration" % re.escape(repr(value))):
        parse_duration_ns(value, "w")


def test_bad_stop_grace_period(compose):
    with pytest.raises(FlowError, match=r"service app: stop_grace_period='later' is not a duration"):
        app(compose, "stop_grace_period: later\n")


# --- extends --------------------------------------------------------------------------------


def test_extends_in_the_same_file(compose):
    project = compose(
        """\
        services:
          base:
            image: app:1
            environment: {A: "1", B: "1"}
            labels: [tier=web]
            ports: ["8080"]
            volumes: ["/data"]
            command: serve
            depends_on: [db]
            container_name: base-container
          app:
            extends: base
            environment: [B=2, C=3]
            labels: {owner: me}
            ports: ["9090"]
            volumes: ["/logs"]
            command: serve --fast
          db:
            image: db:1
        """
    )
    spec = project.service("app")
    assert spec.image == "app:1"
    assert spec.environment == {"A": "1", "B": "2", "C": "3"}
    assert spec.labels == {"tier": "web", "owner": "me"}
    assert spec.ports == [PortSpec(8080), PortSpec(9090)]
    assert [mount.target for mount in spec.mounts] == ["/data", "/logs"]
    assert spec.command == ["serve", "--fast"]
    # depends_on and container_name are never inherited.
    assert spec.depends_on == {}
    assert spec.container_name is None
    # The base itself is unchanged.
    assert project.service("base").environment == {"A": "1", "B": "1"}
    assert project.service("base").depends_on == {"db": "service_started"}


def test_extends_chain_and_long_form(compose):
    project = compose(
        """\
        services:
          a:
            image: a:1
            environment: {A: a}
          b:
            extends: {service: a}
            environment: {B: b}
          c:
            extends:
              service: b
            environment: {C: c}
        """
    )
    assert project.service("c").environment == {"A": "a", "B": "b", "C": "c"}
    assert project.service("c").image == "a:1"


def test_extends_another_file(compose, write_file):
    write_file(
        "common/base.yml",
        """\
        services:
          web:
            image: web:1
            ports: ["80"]
            environment: {A: "1"}
          root:
            image: root:1
            healthcheck:
              test: [CMD, "true"]
        """,
    )
    project = compose(
        """\
        services:
          app:
            extends:
              file: common/base.yml
              service: web
            ports: ["81"]
            environment: {B: "2"}
        """
    )
    spec = project.service("app")
    assert spec.image == "web:1"
    assert spec.ports == [PortSpec(80), PortSpec(81)]
    assert spec.environment == {"A": "1", "B": "2"}


def test_extends_another_file_that_extends_again(compose, write_file):
    write_file("lib/root.yml", "services:\n  root:\n    image: root:1\n    cap_add: [A]\n")
    write_file("lib/base.yml", "services:\n  web:\n    extends: {file: root.yml, service: root}\n    cap_add: [B]\n")
    spec = compose("services:\n  app:\n    extends: {file: lib/base.yml, service: web}\n    cap_add: [C]\n").service("app")
    assert spec.image == "root:1"
    assert spec.cap_add == ["A", "B", "C"]


def test_extends_other_file_is_interpolated(compose, write_file):
    write_file("base.yml", "services:\n  web:\n    image: web:${TAG}\n")
    spec = compose("services:\n  app:\n    extends: {file: base.yml, service: web}\n", environ={"TAG": "7"}).service("app")
    assert spec.image == "web:7"


def test_extends_merges_healthcheck_without_mangling_the_test(compose):
    project = compose(
        """\
        services:
          base:
            image: a
            healthcheck:
              test: [CMD, "true"]
          app:
            extends: base
            healthcheck:
              interval: 5s
        """
    )
    assert project.service("app").healthcheck == {"test": ["CMD", "true"], "interval": 5 * NS}


@pytest.mark.parametrize(
    "text, message",
    [
        ("services:\n  app:\n    extends: nope\n", r"service 'app' extends unknown service 'nope'\.$"),
        ("services:\n  app:\n    extends: {file: x.yml}\n", r"service 'app': extends needs a service name\.$"),
        ("services:\n  app:\n    extends: app\n", r"extends cycle at service 'app'\.$"),
        ("services:\n  a:\n    extends: b\n  b:\n    extends: a\n", r"extends cycle at service 'a'\.$"),
        ("services:\n  app:\n    extends: {file: missing.yml, service: web}\n",
         r"^extends\.file: compose file .*missing\.yml does not exist\.$"),
    ],
)
def test_bad_extends(compose, text, message):
    with pytest.raises(FlowError, match=message):
        compose(text)


def test_extends_unknown_service_of_other_file(compose, write_file):
    base = write_file("base.yml", "services:\n  web:\n    image: a\n")
    with pytest.raises(FlowError) as info:
        compose("services:\n  app:\n    extends: {file: base.yml, service: api}\n")
    assert str(info.value).endswith("service 'app' extends unknown service 'api' of %s." % base)


# --- depends_on -----------------------------------------------------------------------------


DEPENDENCIES = """\
services:
  web:
    image: web
    depends_on: [api, cache]
  api:
    image: api
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
  migrate:
    image: api
    depends_on: [db]
  db:
    image: db
  cache:
    image: redis
    depends_on: {}
"""


def test_depends_on_forms(compose):
    project = compose(DEPENDENCIES)
    assert project.service("web").depends_on == {"api": "service_started", "cache": "service_started"}
    assert project.service("api").depends_on == {"db": "service_healthy", "migrate": "service_completed_successfully"}
    assert project.service("db").depends_on == {}


def test_dependencies_come_first(compose):
    project = compose(DEPENDENCIES)
    ordered = project.dependencies("web")
    assert sorted(ordered) == ["api", "cache", "db", "migrate"]
    assert len(ordered) == len(set(ordered))
    assert ordered.index("db") < ordered.index("migrate") < ordered.index("api")
    assert project.dependencies("db") == []
    assert project.dependencies("migrate") == ["db"]


def test_dependencies_cycle(compose):
    project = compose(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n"
        "  c:\n    image: x\n    depends_on: [a]\n"
    )
    with pytest.raises(FlowError, match=r"depends_on cycle: a -> b -> c -> a\.$"):
        project.dependencies("a")


def test_dependencies_cycle_below_the_target(compose):
    project = compose(
        "services:\n  web:\n    image: x\n    depends_on: [a]\n  a:\n    image: x\n    depends_on: [b]\n"
        "  b:\n    image: x\n    depends_on: [a]\n"
    )
    with pytest.raises(FlowError, match=r"depends_on cycle: web -> a -> b -> a\.$"):
        project.dependencies("web")


def test_self_dependency(compose):
    project = compose("services:\n  a:\n    image: x\n    depends_on: [a]\n")
    with pytest.raises(FlowError, match=r"depends_on cycle: a -> a\.$"):
        project.dependencies("a")


def test_unknown_dependency(compose):
    project = compose("services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on: [db]\n")
    with pytest.raises(FlowError, match=r"service 'api' depends on unknown service 'db'\.$"):
        project.dependencies("web")


def test_diamond_dependencies_are_listed_once(compose):
    project = compose(
        "services:\n  web:\n    image: x\n    depends_on: [a, b]\n  a:\n    image: x\n    depends_on: [db]\n"
        "  b:\n    image: x\n    depends_on: [db]\n  db:\n    image: x\n"
    )
    assert project.dependencies("web") == ["db", "a", "b"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("depends_on: {db: {condition: service_ready}}\n", r"depends_on\.db has an unknown condition 'service_ready'\.$"),
        ("depends_on: db\n", r"service 'app': depends_on must be a list or a mapping\.$"),
    ],
)
def test_bad_depends_on(compose, body, message):
    with pytest.raises(FlowError, match=message):
        app(compose, body, top="")


# --- config_hash ----------------------------------------------------------------------------


def test_config_hash_is_stable(compose):
    text = "services:\n  app:\n    image: a:1\n    environment: {B: '2', A: '1'}\n    ports: ['8080']\n"
    first = compose(text).service("app").config_hash()
    second = compose(text).service("app").config_hash()
    assert first == second
    assert re.match(r"^[0-9a-f]{16}$", first)


def test_config_hash_ignores_mapping_order(compose):
    one = compose("services:\n  app:\n    image: a\n    environment: {A: '1', B: '2'}\n").service("app")
    two = compose("services:\n  app:\n    image: a\n    environment: {B: '2', A: '1'}\n").service("app")
    assert one.config_hash() == two.config_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"image": "a:2"},
        {"environment": {"A": "2"}},
        {"ports": [PortSpec(8081)]},
        {"ports": [PortSpec(8080, "udp")]},
        {"mounts": [MountSpec("volume", "/data")]},
        {"command": ["serve"]},
        {"labels": {"x": "y"}},
        {"healthcheck": {"test": ["NONE"]}},
        {"read_only": True},
    ],
)
def test_config_hash_changes_with_the_spec(change):
    base = dict(name="app", image="a:1", environment={"A": "1"}, ports=[PortSpec(8080)])
    assert ServiceSpec(**base).config_hash() != ServiceSpec(**dict(base, **change)).config_hash()


def test_supported_keys_cover_what_service_spec_reads():
    assert "links" not in SUPPORTED_SERVICE_KEYS
    assert {"image", "ports", "volumes", "extends", "depends_on", "healthcheck"} <= SUPPORTED_SERVICE_KEYS


# --- the deploy section (Swarm services) --------------------------------------------------------


def test_deploy_section_in_swarm_api_units(compose):
    spec = app(
        compose,
        """
        deploy:
          replicas: 3
          endpoint_mode: dnsrr
          labels: [team=books]
          placement:
            constraints: [node.role==worker, "node.labels.zone != eu-1"]
            preferences: [{spread: node.labels.zone}]
            max_replicas_per_node: 2
          update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 500ms,
                          max_failure_ratio: 0.25, order: start-first}
          rollback_config: {parallelism: 0, failure_action: pause}
          restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
          resources:
            limits: {cpus: "0.5", memory: 512M, pids: 100}
            reservations: {cpus: 0.25, memory: 1.5g}
        """,
    )
    assert spec.deploy == DeploySpec(
        replicas=3,
        endpoint_mode="dnsrr",
        labels={"team": "books"},
        constraints=["node.role==worker", "node.labels.zone != eu-1"],
        spread=["node.labels.zone"],
        max_replicas_per_node=2,
        update_config={"Parallelism": 2, "Delay": 10 * NS, "FailureAction": "rollback", "Monitor": NS // 2,
                       "MaxFailureRatio": 0.25, "Order": "start-first"},
        rollback_config={"Parallelism": 0, "FailureAction": "pause"},
        restart_policy={"Condition": "on-failure", "Delay": 5 * NS, "MaxAttempts": 3, "Window": 120 * NS},
        limits={"NanoCPUs": NS // 2, "MemoryBytes": 512 * 1024**2, "Pids": 100},
        reservations={"NanoCPUs": NS // 4, "MemoryBytes": int(1.5 * 1024**3)},
    )


def test_deploy_defaults_and_old_constraint_mapping(compose):
    assert app(compose).deploy == DeploySpec()
    assert app(compose, "deploy:\n  placement:\n    constraints: {node.role: manager}\n").deploy.constraints == [
        "node.role==manager"
    ]
    assert app(compose, "deploy:\n  replicas: 0\n").deploy.replicas == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("deploy: [1]", r"deploy must be a mapping\."),
        ("deploy:\n  mode: global", r"deploy\.mode='global' is not supported: blue-green needs a replicated service"),
        ("deploy:\n  endpoint_mode: mesh", r"deploy\.endpoint_mode='mesh' is not one of dnsrr, vip\."),
        ("deploy:\n  replicas: -1", r"deploy\.replicas=-1 is not valid: use a whole number of 0 or more\."),
        ("deploy:\n  replicas: two", r"deploy\.replicas='two' is not valid"),
        ("deploy:\n  placement:\n    constraints: [node.role]", r"placement\.constraints=\['node\.role'\] is not valid"),
        ("deploy:\n  placement:\n    preferences: [{pack: x}]", r"preferences item \{'pack': 'x'\} is not valid"),
        ("deploy:\n  placement:\n    zone: a", r"deploy\.placement: key\(s\) zone are not supported"),
        ("deploy:\n  update_config: {order: random}", r"update_config\.order='random' is not one of stop-first, start-first"),
        ("deploy:\n  rollback_config: {failure_action: rollback}",
         r"rollback_config\.failure_action='rollback' is not one of continue, pause\."),
        ("deploy:\n  update_config: {max_failure_ratio: 2}", r"max_failure_ratio=2 is not a number from 0 to 1"),
        ("deploy:\n  update_config: {delay: soon}", r"update_config\.delay='soon' is not a duration"),
        ("deploy:\n  restart_policy: {condition: always}",
         r"restart_policy\.condition='always' is not one of none, on-failure, any"),
        ("deploy:\n  resources: {limits: {cpus: 0}}", r"limits\.cpus=0 is not a positive number of CPUs"),
        ("deploy:\n  resources: {limits: {memory: lots}}", r"limits\.memory='lots' is not a size"),
        ("deploy:\n  resources: {reservations: {devices: []}}",
         r"resources\.reservations: key\(s\) devices are not supported\. Supported: cpus, memory\."),
    ],
)
def test_deploy_errors_name_the_key(compose, body, message):
    with pytest.raises(FlowError, match=r"service app: .*" + message):
        app(compose, body + "\n")


@pytest.mark.parametrize("text, expected", [("512m", 512 * 1024**2), ("1gb", 1024**3), (1024, 1024), ("10 k", 10240), ("7b", 7)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text, "w") == expected


def test_port_mode_is_checked():
    with pytest.raises(FlowError, match=r"has an unknown mode 'routing' \(host, ingress\)"):
        parse_port({"target": 80, "mode": "routing"}, "w")
    assert parse_port({"target": 80, "mode": "ingress"}, "w").mode == "ingress"
