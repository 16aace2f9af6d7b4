# -*- coding: utf-8 -*-
"""The long tail of service keys (compose.engine_options), pull_policy values, network ipam,
and the keys a blue-green target cannot have (compose.blue_green).

What the backends make of the normalized values is in backends/test_container_spec.py and
backends/test_swarm.py; that the engine takes them, in tests/integration/test_service_keys.py.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.blue_green import blue_green_refusal, refuse_for_blue_green
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import EngineOptions
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def app(compose, body, extra=""):
    """The spec of service ``app`` (image app:1) with ``body`` under it; ``extra`` is more of the file."""
    text = "services:\n  app:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(body), "    ") + extra
    return compose(text).service("app")


def test_every_long_tail_key_is_normalized(compose):
    spec = app(
        compose,
        """\
        platform: linux/amd64
        runtime: runc
        stdin_open: true
        tty: "true"
        sysctls: [net.core.somaxconn=1024]
        ulimits:
          nproc: 65535
          nofile: {soft: 20000, hard: 40000}
          core: -1
        mem_limit: 256m
        mem_reservation: 128M
        cpus: "0.5"
        cpu_shares: 512
        shm_size: 64mb
        devices: ["/dev/fuse", "/dev/sda:/dev/xvda:rwm"]
        dns: 10.0.0.2
        dns_search: [example.org, example.com]
        dns_opt: [use-vc]
        security_opt: ["no-new-privileges:true"]
        privileged: false
        pid: host
        ipc: shareable
        group_add: [audio, 5555]
        gpus: all
        """,
    )
    assert spec.engine == EngineOptions(
        platform="linux/amd64",
        runtime="runc",
        stdin_open=True,
        tty=True,
        sysctls={"net.core.somaxconn": "1024"},
        ulimits={"nproc": {"soft": 65535, "hard": 65535}, "nofile": {"soft": 20000, "hard": 40000},
                 "core": {"soft": -1, "hard": -1}},
        mem_limit=256 * 1024**2,
        mem_reservation=128 * 1024**2,
        cpus=0.5,
        cpu_shares=512,
        shm_size=64 * 1024**2,
        devices=["/dev/fuse", "/dev/sda:/dev/xvda:rwm"],
        dns=["10.0.0.2"],
        dns_search=["example.org", "example.com"],
        dns_opt=["use-vc"],
        security_opt=["no-new-privileges:true"],
        pid="host",
        ipc="shareable",
        group_add=["audio", "5555"],
        gpus=[{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}],
    )


@pytest.mark.parametrize("value", ["0", "0.000", "'0'"])
def test_zero_cpus_is_no_limit_as_in_compose(compose, value):
    assert app(compose, "cpus: %s\n" % value).engine.cpus is None


def test_sysctls_in_mapping_form(compose):
    assert app(compose, "sysctls: {net.ipv4.tcp_syncookies: 0}\n").engine.sysctls == {"net.ipv4.tcp_syncookies": "0"}


def test_gpus_in_the_long_form_become_device_requests(compose):
    spec = app(
        compose,
        """\
        gpus:
          - driver: nvidia
            count: 2
            capabilities: [gpu, utility]
          - device_ids: ["0", "3"]
        """,
    )
    assert spec.engine.gpus == [
        {"Driver": "nvidia", "Count": 2, "DeviceIDs": None, "Capabilities": [["gpu", "utility"]], "Options": {}},
        {"Driver": "", "Count": 0, "DeviceIDs": ["0", "3"], "Capabilities": [["gpu"]], "Options": {}},
    ]


def test_a_service_without_these_keys_keeps_its_config_hash(compose):
    """A release deployed before these keys existed is not redeployed for them: same spec, same hash."""
    plain = app(compose, "ports: ['8080']\n")
    assert plain.engine == EngineOptions()
    assert plain.config_hash() == "84712c75c14416b0"  # what 7fc7c6b computes for this service
    assert app(compose, "ports: ['8080']\ntty: true\n").config_hash() != plain.config_hash()


@pytest.mark.parametrize(
    "body, message",
    [
        ("tty: maybe\n", "service app: tty='maybe' is not a boolean: use true or false."),
        ("mem_limit: lots\n", "service app: mem_limit='lots' is not a size (examples: 512m, 1g, 1048576)."),
        ("shm_size: -1\n", "service app: shm_size=-1 is not a size"),
        ("cpus: -1\n", "service app: cpus=-1 is not valid: use a number of CPUs, 0 for no limit (examples: 0.5, 2)."),
        ("cpus: many\n", "service app: cpus='many' is not valid: use a number of CPUs, 0 for no limit"),
        ("cpu_shares: 1\n", "service app: cpu_shares=1 is not valid: use a whole number of 2 or more."),
        ("ulimits: [nofile]\n", "service app: ulimits must be a mapping of limit names to a number or {soft, hard}."),
        ("ulimits: {nofile: {soft: 10}}\n", "service app: ulimits.nofile needs both soft and hard (and nothing else)."),
        ("ulimits: {nofile: {soft: 10, hard: 5}}\n", "service app: ulimits.nofile: soft 10 is above hard 5."),
        ("ulimits: {nofile: many}\n", "service app: ulimits.nofile='many' is not valid: use a whole number of 0 or more."),
        ("devices: [nvidia.com/gpu=all]\n", "service app: devices: 'nvidia.com/gpu=all' is not a device path"),
        ("network_mode: overlay\n", "service app: network_mode='overlay' is not one of bridge, host, none, "
                                    "service:<name>, container:<name>."),
        ("network_mode: service:nope\n", "service app: network_mode='service:nope' names no service of this file. "
                                         "Services: app."),
        ("pid: private\n", "service app: pid='private' is not one of host, service:<name>, container:<name>."),
        ("ipc: 'service:'\n", "service app: ipc='service:' is not one of host, private, shareable, none"),
        ("platform: ''\n", "service app: platform='' must be a non-empty string."),
        ("gpus: 2\n", "service app: gpus must be all or a list of device requests."),
        ("gpus: [{count: 1, device_ids: ['0']}]\n", "service app: gpus[0] sets both count and device_ids; set one."),
        ("gpus: [{vendor: x}]\n", "service app: gpus[0]: key(s) vendor are not supported."),
        ("annotations: {com.example.a: b}\n", "service app: key(s) annotations are not supported (annotations need "
                                              "engine API 1.43 and the Docker SDK cannot send them: use labels instead). "
                                              "Supported: "),
        ("network_mode: host\nnetworks: [default]\n", "service app: network_mode and networks cannot be combined (as in "
                                                      "Compose); remove one."),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_the_key(compose, body, message):
    with pytest.raises(FlowError) as info:
        app(compose, body)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("mode", ["bridge", "host", "none", "service:db", "container:some-container"])
def test_network_modes_replace_the_networks(compose, mode):
    spec = app(compose, "network_mode: %s\n" % mode, "  db:\n    image: db:1\n")
    assert (spec.engine.network_mode, spec.networks) == (mode, {})


@pytest.mark.parametrize(
    "value, expected",
    [("always", ("always", None)), ("missing", ("missing", None)), ("if_not_present", ("missing", None)),
     ("never", ("never", None)), ("daily", ("refresh", 86400)), ("weekly", ("refresh", 604800)),
     ("every_12h", ("refresh", 43200)), ("every_2d", ("refresh", 172800)), ("every_1h30m", ("refresh", 5400))],
)
def test_pull_policy_values(compose, value, expected):
    spec = app(compose, "pull_policy: %s\n" % value)
    assert (spec.pull_policy, spec.pull_refresh_s) == expected


def test_a_pull_schedule_is_no_part_of_the_config_hash(compose):
    """When to pull is no reason to replace the running instances."""
    assert app(compose, "pull_policy: daily\n").config_hash() == app(compose, "pull_policy: weekly\n").config_hash()


@pytest.mark.parametrize(
    "value, message",
    [
        ("build", "pull_policy build needs a build section (what to build the image from)."),
        ("every_", "pull_policy every_='' is not a duration"),
        ("every_500ms", "pull_policy every_500ms is not valid: use every_<duration> of a second or more (every_12h)."),
        ("every_soon", "pull_policy every_soon='soon' is not a duration"),
        ("sometimes", "pull_policy='sometimes' is not one of always, build, if_not_present, missing, never, daily, "
                      "weekly or every_<duration>."),
    ],
)
def test_pull_policy_values_flow_cannot_honour_are_refused(compose, value, message):
    with pytest.raises(FlowError, match=re.escape(message)):
        app(compose, "pull_policy: %s\n" % value)


def test_network_ipam_in_the_engines_form(compose):
    project = compose(
        """\
        services:
          app:
            image: a
        networks:
          front:
            ipam:
              driver: default
              config:
                - subnet: 172.28.0.0/16
                  ip_range: 172.28.5.0/24
                  gateway: 172.28.5.254
                  aux_addresses: {host1: 172.28.1.5}
              options: {foo: bar}
          back: {}
        """
    )
    assert project.networks["front"]["ipam"] == {
        "Driver": "default",
        "Config": [{"Subnet": "172.28.0.0/16", "IPRange": "172.28.5.0/24", "Gateway": "172.28.5.254",
                    "AuxiliaryAddresses": {"host1": "172.28.1.5"}}],
        "Options": {"foo": "bar"},
    }
    assert project.networks["back"]["ipam"] is None


@pytest.mark.parametrize(
    "ipam, message",
    [
        ("{subnet: 10.0.0.0/8}", "networks.front.ipam: key(s) subnet are not supported. Supported: config, driver, options."),
        ("{config: [{subnet: 10.0.0.0/8, mask: 8}]}", "networks.front.ipam.config[0]: key(s) mask are not supported."),
    ],
)
def test_bad_ipam_is_refused_naming_the_key(compose, ipam, message):
    with pytest.raises(FlowError, match=re.escape(message)):
        compose("services:\n  app:\n    image: a\nnetworks:\n  front:\n    ipam: %s\n" % ipam)


def test_a_service_may_fix_its_address_on_a_network(compose):
    spec = app(compose, "networks:\n  back: {ipv4_address: 172.28.0.9, ipv6_address: 'fd00::9', aliases: [b]}\n  front:\n",
               "networks:\n  back: {}\n  front: {}\n")
    assert spec.networks == {"back": {"aliases": ["b"], "ipv4_address": "172.28.0.9", "ipv6_address": "fd00::9"},
                             "front": {"aliases": []}}


def test_volumes_have_no_ipam(compose):
    with pytest.raises(FlowError, match=re.escape("volumes.data: key(s) ipam are not supported.")):
        compose("services:\n  app:\n    image: a\nvolumes:\n  data:\n    ipam: {}\n")


# --- what a blue-green target cannot have --------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("container_name: fixed\n", "target app sets container_name, which allows one instance only; remove it "
                                    "(instances are named <project>-<target>-<color>-<n>)."),
        ("network_mode: host\n", "target app sets network_mode host: every instance of both colors would listen on the "
                                 "same host port, so the new color could not start while the old one serves; remove "
                                 "network_mode and publish the port under ports."),
        ("network_mode: service:db\n", "target app sets network_mode service:db: every instance of both colors would "
                                       "share that container's network and port"),
        ("network_mode: container:x\n", "target app sets network_mode container:x: every instance"),
        ("network_mode: none\nports: ['80']\n", "target app sets network_mode none and publishes ports: an instance "
                                                "without a network cannot be reached; remove network_mode or the ports."),
        ("networks: {back: {ipv4_address: 172.28.0.9}}\n", "target app sets networks.back.ipv4_address: one address "
                                                           "allows one instance, and the new color would need it while "
                                                           "the old one serves; remove it (instances get addresses from "
                                                           "the network's ipam)."),
    ],
)
def test_keys_a_blue_green_target_cannot_have_are_refused_with_why_and_what_instead(compose, body, message):
    spec = app(compose, body, "  db:\n    image: db:1\nnetworks:\n  back: {}\n")
    with pytest.raises(FlowError) as info:
        refuse_for_blue_green(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "body", ["network_mode: bridge\nports: ['80']\n", "network_mode: none\n", "pid: host\nipc: private\nprivileged: true\n"]
)
def test_keys_that_hold_for_every_instance_pass(compose, body):
    assert blue_green_refusal(app(compose, body)) is None
