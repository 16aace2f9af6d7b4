# -*- coding: utf-8 -*-
"""The last service keys of issue 12: develop, label_file, include, the network attachment keys,
blkio_config, credential_spec, the lifecycle hooks and scale (what the reader makes of them).

What the container backend makes of them is in backends/test_container_spec.py; that the engine
takes them, in tests/integration/test_service_keys.py.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def app(compose, body, extra=""):
    """The spec of service ``app`` (image app:1) with ``body`` under it; ``extra`` is more of the file."""
    text = "services:\n  app:\n    image: app:1\n" + textwrap.indent(textwrap.dedent(body), "    ") + extra
    return compose(text).service("app")


def test_develop_is_accepted_and_reaches_nothing(compose):
    plain = app(compose, "command: run\n")
    spec = app(compose, "command: run\ndevelop:\n  watch:\n    - path: ./src\n      action: rebuild\n")
    assert spec == plain
    assert spec.config_hash() == plain.config_hash()


def test_label_file_labels_are_read_and_labels_win(compose, write_file):
    write_file("app.labels", "# comment\ncom.example.tier=web\ncom.example.owner=\"ops team\"\n")
    write_file("more.labels", "com.example.tier=api\ncom.example.extra=${EXTRA}\n")
    text = ("services:\n  app:\n    image: app:1\n    label_file: [./app.labels, ./more.labels]\n"
            "    labels:\n      com.example.owner: me\n")
    spec = compose(text, environ={"EXTRA": "x"}).service("app")
    assert spec.labels == {"com.example.tier": "api", "com.example.owner": "me", "com.example.extra": "x"}


def test_label_file_missing_is_one_line_naming_it(compose):
    with pytest.raises(FlowError) as caught:
        app(compose, "label_file: ./missing.labels\n")
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(r"service app: label_file: label file \S+/missing\.labels does not exist\.$", message)


def test_include_brings_services_and_resources_with_their_own_paths(write_file):
    write_file("common/.env", "TAG=7\n")
    write_file("common/db.env", "PASSWORD=x\n")
    write_file("common/compose.yaml", """\
        services:
          db:
            image: db:${TAG}
            env_file: db.env
            volumes: [./data:/data, dbdata:/var/lib/db]
            networks: [back]
        networks:
          back: {}
        volumes:
          dbdata: {}
        """)
    write_file("other/compose.yaml", "services:\n  cache:\n    image: cache:${CACHE_TAG}\n")
    write_file("other.env", "CACHE_TAG=3\n")
    path = write_file("app/compose.yaml", """\
        include:
          - ../common/compose.yaml
          - path: ../other/compose.yaml
            env_file: ../other.env
        services:
          web:
            image: web:1
            depends_on: [db]
            networks: [back]
        """)
    project = load_project(path, environ={})
    assert sorted(project.services) == ["cache", "db", "web"]
    db = project.service("db")
    assert db.image == "db:7"
    assert db.environment == {"PASSWORD": "x"}
    assert db.mounts[0].source == str(write_file("common/data/x", "")).rsplit("/", 1)[0]
    assert project.service("cache").image == "cache:3"
    assert project.service("web").networks == {"back": {"aliases": []}}
    assert project.dependencies("web") == ["db"]


def test_include_project_directory_is_where_its_paths_start(write_file):
    write_file("inc/compose.yaml", "services:\n  db:\n    image: db:1\n    volumes: [./data:/data]\n")
    write_file("base/.env", "X=1\n")
    path = write_file("compose.yaml", "include:\n  - path: inc/compose.yaml\n    project_directory: base\nservices: {}\n")
    mount = load_project(path, environ={}).service("db").mounts[0]
    assert mount.source.endswith("/base/data")


def test_a_service_in_both_files_is_one_line_naming_it(write_file):
    write_file("inc.yaml", "services:\n  web:\n    image: other:1\n")
    path = write_file("compose.yaml", "include: [inc.yaml]\nservices:\n  web:\n    image: web:1\n")
    with pytest.raises(FlowError) as caught:
        load_project(path, environ={})
    assert "\n" not in str(caught.value)
    assert re.search(r"service 'web' is also defined by the included file \S+inc\.yaml; Compose refuses", str(caught.value))


def test_a_resource_both_define_differently_is_an_error_and_alike_is_fine(write_file):
    write_file("inc.yaml", "services:\n  db:\n    image: db:1\nnetworks:\n  back: {}\n")
    path = write_file("compose.yaml", "include: [inc.yaml]\nservices:\n  web:\n    image: web:1\nnetworks:\n  back: {}\n")
    assert sorted(load_project(path, environ={}).networks) == ["back"]
    write_file("inc.yaml", "services:\n  db:\n    image: db:1\nnetworks:\n  back:\n    external: true\n")
    with pytest.raises(FlowError, match=r"networks\.back is defined differently by the included file"):
        load_project(path, environ={})


@pytest.mark.parametrize(
    "include, message",
    [
        ("[missing.yaml]", r"^include: compose file \S+/missing\.yaml does not exist\.$"),
        ("[compose.yaml]", r"include cycle: \S+compose\.yaml includes \S+compose\.yaml\.$"),
        ("[{path: [a.yaml, b.yaml]}]", r"include\[0\]: path must be one Compose file"),
        ("[{path: a.yaml, extra: 1}]", r"include\[0\]"),
    ],
)
def test_bad_includes_are_one_line(write_file, include, message):
    path = write_file("compose.yaml", "include: %s\nservices:\n  web:\n    image: web:1\n" % include)
    with pytest.raises(FlowError) as caught:
        load_project(path, environ={})
    assert "\n" not in str(caught.value)
    assert re.search(message, str(caught.value))


NETWORKS = "networks:\n  front: {}\n  back: {}\n  side: {}\n"


def test_priority_orders_the_networks_highest_first_then_the_files_order(compose):
    spec = app(compose, "networks:\n  front:\n  back: {priority: 1000}\n  side: {priority: '100'}\n", NETWORKS)
    assert list(spec.networks) == ["back", "side", "front"]
    assert spec.networks["back"] == {"aliases": [], "priority": 1000}
    plain = app(compose, "networks: [front, back, side]\n", NETWORKS)
    assert list(plain.networks) == ["front", "back", "side"]
    assert plain.networks["front"] == {"aliases": []}  # unset: the spec (and config hash) of before
    with pytest.raises(FlowError, match=r"networks\.back\.priority='high' is not a whole number\.$"):
        app(compose, "networks:\n  back: {priority: high}\n", NETWORKS)


def test_link_local_ips_reach_the_endpoint_and_are_a_side_target_only(compose):
    from ansible_collections.dockerflow.flow.plugins.module_utils.compose.blue_green import blue_green_refusal

    spec = app(compose, "networks:\n  front:\n    link_local_ips: [169.254.8.8, 169.254.8.9]\n", NETWORKS)
    assert spec.networks["front"] == {"aliases": [], "link_local_ips": ["169.254.8.8", "169.254.8.9"]}
    assert "sets networks.front.link_local_ips: one address allows one instance" in blue_green_refusal(spec)


def test_gw_priority_is_one_line_naming_the_key_and_the_api_version(compose):
    with pytest.raises(FlowError) as caught:
        app(compose, "networks:\n  front: {gw_priority: 1}\n", NETWORKS)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(r"service app: networks\.front\.gw_priority needs Docker Engine API 1\.48", message)


BLKIO = """\
blkio_config:
  weight: 300
  weight_device: [{path: /dev/sda, weight: 400}]
  device_read_bps: [{path: /dev/sdb, rate: '12mb'}]
  device_read_iops: [{path: /dev/sdb, rate: 120}]
  device_write_bps: [{path: /dev/sdb, rate: '1024k'}]
  device_write_iops: [{path: /dev/sdb, rate: 30}]
"""


def test_blkio_config_becomes_the_sdks_host_config_arguments(compose):
    assert app(compose, BLKIO).engine.blkio_config == {
        "blkio_weight": 300,
        "blkio_weight_device": [{"Path": "/dev/sda", "Weight": 400}],
        "device_read_bps": [{"Path": "/dev/sdb", "Rate": 12 * 1024**2}],
        "device_read_iops": [{"Path": "/dev/sdb", "Rate": 120}],
        "device_write_bps": [{"Path": "/dev/sdb", "Rate": 1024**2}],
        "device_write_iops": [{"Path": "/dev/sdb", "Rate": 30}],
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ("blkio_config: {weight: 5}\n", r"blkio_config\.weight=5 is not valid: use a whole number of 10 or more\.$"),
        ("blkio_config: {weight: 2000}\n", r"blkio_config\.weight=2000 is not valid: use a whole number from 10 to 1000\.$"),
        ("blkio_config: {device_read_bps: [{path: /dev/sda}]}\n",
         r"device_read_bps\[0\] must be a mapping with path and rate\.$"),
        ("blkio_config: {speed: 1}\n", r"blkio_config: key\(s\) speed are not supported"),
        ("post_start: [{user: root}]\n", r"post_start\[0\]\.command is required"),
        ("pre_stop: [./x.sh]\n", r"pre_stop\[0\] must be a mapping with command"),
        ("post_start: [{command: x, image: busybox}]\n", r"post_start\[0\]: key\(s\) image are not supported"),
    ],
)
def test_a_bad_blkio_config_or_hook_is_one_line_naming_it(compose, body, message):
    with pytest.raises(FlowError) as caught:
        app(compose, body)
    assert "\n" not in str(caught.value)
    assert re.search(message, str(caught.value))


def test_a_service_with_older_engine_keys_keeps_its_config_hash(compose):
    # the digest main (e8e961c) gave this service, before blkio_config was read: no redeploy after an upgrade
    assert app(compose, "mem_limit: 64m\ncommand: run\n").config_hash() == "3cff1e37282cc6a5"


@pytest.mark.parametrize(
    "text, message",
    [
        ("services:\n  app:\n    image: app:1\n    credential_spec: {registry: spec}\n",
         r"service app: credential_spec sets a Windows container's gMSA identity .*; remove it\.$"),
        ("services:\n  app:\n    image: app:1\n    models: [m]\n",
         r"service app: models needs Docker Model Runner, which this engine lacks .*; remove it\.$"),
        ("services:\n  app:\n    image: app:1\nmodels:\n  m: {model: ai/model}\n",
         r"top-level models needs Docker Model Runner, which this engine lacks .*; remove it\.$"),
    ],
)
def test_keys_refused_for_good_are_one_line_with_the_reason(compose, text, message):
    with pytest.raises(FlowError) as caught:
        compose(text).service("app")
    assert "\n" not in str(caught.value)
    assert re.search(message, str(caught.value))


def test_post_start_and_pre_stop_hooks_are_read_and_carried_in_labels(compose):
    from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container_hooks import hook_labels, labelled_hooks

    spec = app(compose, """\
        post_start:
          - command: ./warm.sh --all
            user: root
            privileged: true
            environment: [FOO=BAR]
        pre_stop:
          - command: [sh, -c, "echo bye"]
            working_dir: /app
        """)
    assert spec.engine.post_start == [{"command": ["./warm.sh", "--all"], "user": "root", "privileged": True,
                                       "working_dir": None, "environment": {"FOO": "BAR"}}]
    assert spec.engine.pre_stop[0]["command"] == ["sh", "-c", "echo bye"]
    labels = hook_labels(spec)
    assert labelled_hooks(labels, "post_start") == spec.engine.post_start
    assert labelled_hooks(labels, "pre_stop") == spec.engine.pre_stop
    assert hook_labels(app(compose, "command: run\n")) == {}


def test_pre_start_steps_are_read_with_their_image_or_the_services(compose):
    spec = app(compose, """\
        pre_start:
          - command: ["./manage.py", "migrate"]
          - image: busybox
            command: sh -c 'chown -R 1000:1000 /data'
            user: root
            environment: {STEP: chown}
          - image: tools:1
            per_replica: false
        """)
    assert spec.engine.pre_start == [
        {"command": ["./manage.py", "migrate"], "image": None, "user": None, "privileged": False, "working_dir": None,
         "environment": {}},
        {"command": ["sh", "-c", "chown -R 1000:1000 /data"], "image": "busybox", "user": "root", "privileged": False,
         "working_dir": None, "environment": {"STEP": "chown"}},
        {"command": None, "image": "tools:1", "user": None, "privileged": False, "working_dir": None, "environment": {}},
    ]
    assert app(compose, "command: run\n").config_hash() == app(compose, "command: run\npre_start: []\n").config_hash()


@pytest.mark.parametrize(
    "body, message",
    [
        ("pre_start: [migrate]\n", "pre_start[0] must be a mapping with command or image"),
        ("pre_start: [{user: root}]\n", "pre_start[0] needs command or image: what to run before the service starts."),
        ("pre_start: [{command: migrate, per_replica: true}]\n",
         "pre_start[0].per_replica: true is not supported: Flow runs pre_start once per release"),
        ("pre_start: [{command: migrate, when: always}]\n", "pre_start[0]"),
    ],
)
def test_a_bad_pre_start_step_is_one_line_naming_it(compose, body, message):
    with pytest.raises(FlowError, match=re.escape(message)) as error:
        app(compose, body)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("body, replicas", [("scale: 3\n", 3), ("scale: 0\n", 0),
                                            ("scale: 2\ndeploy: {replicas: 2}\n", 2)])
def test_scale_is_the_first_releases_count_as_deploy_replicas_is(compose, body, replicas):
    assert app(compose, body).deploy.replicas == replicas


@pytest.mark.parametrize("body, message", [
    ("scale: 2\ndeploy: {replicas: 3}\n", "scale=2 and deploy.replicas=3 disagree: set one of them."),
    ("scale: many\n", "scale='many' is not valid: use a whole number of 0 or more."),
])
def test_a_bad_scale_is_one_line(compose, body, message):
    with pytest.raises(FlowError, match=re.escape(message)):
        app(compose, body)
