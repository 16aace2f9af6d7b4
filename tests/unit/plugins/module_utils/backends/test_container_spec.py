# -*- coding: utf-8 -*-
"""The container backend's pure translations: a Compose service to create_container arguments,
a template's inspect data to its clones', a container's inspect data to an Instance.

What the engine does with them (create, connect, start, remove after a failure) runs in
tests/integration (test_deploy.py, test_scale_stop_old.py) against the real engine.
"""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends import container_spec
from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_CONTAINER_NUMBER,
    LABEL_NUMBER,
    LABEL_RELEASE,
    LABEL_SERVICE,
)

docker_types = pytest.importorskip("docker.types")

COMPOSE = """
services:
  app:
    image: app:1
    command: ["serve"]
    entrypoint: /bin/run
    ports: ["8080", "127.0.0.1:9090:9090/udp"]
    expose: ["7000", "7001/udp"]
    volumes:
      - data:/data:ro
      - ./conf:/etc/app
    tmpfs: /run
    extra_hosts: ["db.local:10.0.0.7", "cache=10.0.0.8"]
    restart: on-failure:3
    cap_add: [NET_ADMIN]
    read_only: true
    stop_grace_period: 20s
volumes:
  data: {}
"""


@pytest.fixture
def spec(write_file):
    return load_project(write_file("c/docker-compose.yml", COMPOSE), "c").service("app")


def test_create_args_carry_ports_and_exposed_ports(spec):
    args = container_spec.create_args(spec)
    assert args["ports"] == [(8080, "tcp"), (9090, "udp"), (7000, "tcp"), (7001, "udp")]
    assert (args["command"], args["entrypoint"], args["stop_timeout"]) == (["serve"], ["/bin/run"], 20)


def test_host_config_publishes_on_the_publish_address_unless_the_port_names_one(spec):
    args = container_spec.host_config_args(spec, {"data": "c_data"}, "10.1.2.3", "c_default")
    # no host port: Docker picks one on the publish address; a host_ip wins over it
    assert args["port_bindings"] == {"8080/tcp": [("10.1.2.3",)], "9090/udp": [("127.0.0.1", 9090)]}
    assert args["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert args["extra_hosts"] == ["db.local:10.0.0.7", "cache:10.0.0.8"]
    assert (args["read_only"], args["cap_add"], args["cap_drop"], args["network_mode"]) == (
        True, ["NET_ADMIN"], None, "c_default")
    volume, bind = list(args["mounts"])  # list(): pylint infers the mounts entry may be None
    assert (volume["Type"], volume["Source"], volume["Target"], volume["ReadOnly"]) == ("volume", "c_data", "/data", True)
    assert (bind["Type"], bind["Target"], bind["ReadOnly"]) == ("bind", "/etc/app", False)


@pytest.mark.parametrize(
    "restart, expected",
    [(None, None), ("no", None), ("always", {"Name": "always", "MaximumRetryCount": 0})],
)
def test_restart_policy(restart, expected):
    assert container_spec.restart_policy(restart) == expected


TEMPLATE_ID = "0123456789abcdef" * 4
TEMPLATE = {
    "Id": TEMPLATE_ID,
    "Name": "/books-app-blue-1",
    "Created": "2026-12-03T15:00:00Z",
    "Config": {
        "Image": "app:1",
        "Hostname": TEMPLATE_ID[:12],
        "Labels": {LABEL_SERVICE: "books-app", LABEL_COLOR: "blue", LABEL_RELEASE: "4", LABEL_NUMBER: "1",
                   LABEL_CONTAINER_NUMBER: "1"},
        "ExposedPorts": {"8080/tcp": {}},
        "User": "",
    },
    "HostConfig": {"NetworkMode": "books_back"},
    "State": {"Status": "running", "Health": {"Status": "healthy"}, "ExitCode": 0},
    "NetworkSettings": {
        "Networks": {"books_front": {"Aliases": ["app"]}, "books_back": {"Aliases": ["app-blue", TEMPLATE_ID[:12]]}},
        "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}], "9000/tcp": None},
    },
}


def test_a_clone_gets_its_number_and_its_own_hostname():
    args = container_spec.clone_args(TEMPLATE["Config"], TEMPLATE_ID, 3)
    assert args["labels"][LABEL_NUMBER] == args["labels"][LABEL_CONTAINER_NUMBER] == "3"
    assert TEMPLATE["Config"]["Labels"][LABEL_NUMBER] == "1"  # the template's labels are not changed
    assert args["hostname"] is None and args["user"] is None
    assert args["ports"] == [("8080", "tcp")]


def test_a_clone_starts_on_the_templates_network_with_its_aliases_less_the_engines():
    assert container_spec.first_network(TEMPLATE) == "books_back"
    endpoint = TEMPLATE["NetworkSettings"]["Networks"]["books_back"]
    assert container_spec.inherited_aliases(endpoint, TEMPLATE_ID) == ["app-blue"]


def test_a_container_is_an_instance_with_its_published_ports():
    instance = container_spec.container_instance(TEMPLATE)
    assert (instance.name, instance.service, instance.color, instance.release, instance.number) == (
        "books-app-blue-1", "books-app", "blue", 4, 1)
    assert (instance.status, instance.health, instance.running) == ("running", "healthy", True)
    assert instance.ports == {"8080/tcp": 32768}


# -- the long tail of service keys (compose.engine_options) -> create_container / create_host_config --

LONG_TAIL = """
services:
  app:
    image: app:1
    platform: linux/amd64
    runtime: runc
    stdin_open: true
    tty: true
    sysctls: {net.core.somaxconn: 1024}
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    mem_limit: 64m
    mem_reservation: 32m
    cpus: 1.5
    cpu_shares: 512
    shm_size: 16m
    devices: [/dev/fuse]
    dns: [10.0.0.2]
    dns_search: example.org
    dns_opt: [ndots:1]
    security_opt: [no-new-privileges:true]
    privileged: true
    pid: service:sidecar
    ipc: host
    group_add: [audio]
    gpus: all
  sidecar:
    image: sidecar:1
    container_name: the-sidecar
  worker:
    image: worker:1
    network_mode: service:db
  db:
    image: db:1
"""


@pytest.fixture
def long_tail(write_file):
    return load_project(write_file("t/docker-compose.yml", LONG_TAIL), "t")


def test_the_long_tail_keys_become_create_container_arguments(long_tail):
    args = container_spec.create_args(long_tail.service("app"))
    assert (args["platform"], args["stdin_open"], args["tty"]) == ("linux/amd64", True, True)


def test_the_long_tail_keys_become_host_config_arguments(long_tail):
    spec = long_tail.service("app")
    peers = container_spec.namespace_peers(spec, "t", long_tail.services)
    assert peers == {"sidecar": "the-sidecar"}  # a service:<name> mode points at that side target's container
    args = container_spec.host_config_args(spec, {}, "127.0.0.1", "t_default", peers)
    expected = {
        "runtime": "runc",
        "sysctls": {"net.core.somaxconn": "1024"},
        "ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 512, "Hard": 512}],
        "mem_limit": 64 * 1024**2,
        "mem_reservation": 32 * 1024**2,
        "nano_cpus": 1_500_000_000,
        "cpu_shares": 512,
        "shm_size": 16 * 1024**2,
        "devices": ["/dev/fuse"],
        "dns": ["10.0.0.2"],
        "dns_search": ["example.org"],
        "dns_opt": ["ndots:1"],
        "security_opt": ["no-new-privileges:true"],
        "privileged": True,
        "pid_mode": "container:the-sidecar",
        "ipc_mode": "host",
        "group_add": ["audio"],
        "device_requests": [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}],
        "network_mode": "t_default",
    }
    assert {key: args[key] for key in expected} == expected
    # the Docker SDK takes every one of them (API 1.41, the engine's version here)
    host_config = docker_types.HostConfig(version="1.41", **args)
    assert (host_config["Sysctls"], host_config["NanoCpus"], host_config["PidMode"]) == (
        {"net.core.somaxconn": "1024"}, 1_500_000_000, "container:the-sidecar")
    assert host_config["Ulimits"][0] == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert host_config["DeviceRequests"][0]["Capabilities"] == [["gpu"]]


def test_a_service_without_the_long_tail_keys_gets_none_of_them(spec):
    args = container_spec.host_config_args(spec, {"data": "c_data"}, "10.1.2.3", "c_default")
    engine_keys = container_spec.engine_host_config(spec, {})
    assert {key: args[key] for key in engine_keys if args[key] not in (None, False)} == {}
    assert (container_spec.create_args(spec)["tty"], container_spec.create_args(spec)["platform"]) == (False, None)


def test_a_network_mode_is_the_whole_networking_of_a_service_without_networks(long_tail):
    worker = long_tail.service("worker")
    peers = container_spec.namespace_peers(worker, "t", long_tail.services)
    assert peers == {"db": "t-db-1"}  # the side target's default name
    assert container_spec.host_config_args(worker, {}, "127.0.0.1", None, peers)["network_mode"] == "container:t-db-1"


def test_a_clone_keeps_the_templates_tty_and_open_stdin():
    config = dict(TEMPLATE["Config"], Tty=True, OpenStdin=True)
    args = container_spec.clone_args(config, TEMPLATE_ID, 2)
    assert (args["tty"], args["stdin_open"]) == (True, True)
    assert container_spec.clone_args(TEMPLATE["Config"], TEMPLATE_ID, 2)["tty"] is False


def test_an_endpoint_has_the_flow_aliases_the_files_and_its_fixed_addresses():
    options = {"aliases": ["db"], "ipv4_address": "172.28.0.9"}
    assert container_spec.endpoint_args(options, ["t-db"]) == {"aliases": ["t-db", "db"], "ipv4_address": "172.28.0.9"}
    assert container_spec.endpoint_args({"aliases": []}, ["app"]) == {"aliases": ["app"]}
    # create_endpoint_config and connect_container_to_network take these very arguments
    assert docker_types.EndpointConfig("1.41", **container_spec.endpoint_args(options, []))["IPAMConfig"] == {
        "IPv4Address": "172.28.0.9"}


def test_an_endpoint_carries_link_local_ips_and_not_the_priority():
    options = {"aliases": [], "link_local_ips": ["169.254.8.8"], "priority": 100}
    endpoint = container_spec.endpoint_args(options, ["app"])
    assert endpoint == {"aliases": ["app"], "link_local_ips": ["169.254.8.8"]}
    assert docker_types.EndpointConfig("1.41", **endpoint)["IPAMConfig"] == {"LinkLocalIPs": ["169.254.8.8"]}


def test_blkio_config_reaches_the_host_config(compose):
    spec = compose("services:\n  app:\n    image: app:1\n    blkio_config:\n      weight: 300\n"
                   "      device_read_bps: [{path: /dev/sdb, rate: 1mb}]\n").service("app")
    args = container_spec.host_config_args(spec, {}, "127.0.0.1", "t_default")
    host_config = docker_types.HostConfig(version="1.41", **args)
    assert (host_config["BlkioWeight"], host_config["BlkioDeviceReadBps"]) == (300, [{"Path": "/dev/sdb", "Rate": 1024**2}])
