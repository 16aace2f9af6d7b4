# -*- coding: utf-8 -*-
"""Compose files the modules cannot honour fail with a message that says what to change, and the
live release keeps serving: unsupported keys, a key blue-green cannot honour, an image the engine does not have, a host port
another process holds, and a fixed host port that two colors or two instances would share."""

from __future__ import annotations

import os
import socket

import yaml

from conftest import APP_V1, BASE_IMAGE, free_ports
from support.playbook import assert_clean_failure, run_tasks


def compose(app, **extra):
    return yaml.safe_dump({"services": {"app": dict({"image": APP_V1, "ports": ["8080"]}, **app),
                                        "db": {"image": BASE_IMAGE, "command": "sleep infinity"}}, **extra})


def test_bad_compose_files_fail_clearly_and_the_live_release_keeps_serving(flow_project):
    flow_project.run("flow_deploy", {"health_path": "/health"})  # an HTTP probe: see test_security_consul_acl.HEALTH
    live = flow_project.running("blue")[0]
    before = flow_project.snapshot()
    held_port = free_ports(1)[0]
    flow_project.write("unsupported.yml", compose({"build": ".", "links": ["db"]}))
    flow_project.write("host-network.yml", compose({"network_mode": "host"}))
    flow_project.write("top-level.yml", compose({}, include=["other.yml"]))
    flow_project.write("no-image.yml", compose({"image": "dockerflow-test/no-such-image:1"}))
    flow_project.write("held-port.yml", compose({"ports": ["127.0.0.1:%d:8080" % held_port]}))
    cases = [
        ({"compose_path": "unsupported.yml"},
         "service app: key(s) links are not supported. Supported: "),
        ({"compose_path": "host-network.yml"},
         "target app sets network_mode host: every instance of both colors would listen on the same host port, so the "
         "new color could not start while the old one serves; remove network_mode and publish the port under ports."),
        ({"compose_path": "top-level.yml"},
         "include: compose file %s does not exist." % os.path.join(flow_project.dir, "other.yml")),
        ({"compose_path": "no-image.yml", "pull": "never"},
         "Image dockerflow-test/no-such-image:1 is not on the engine and pull is 'never'."),
        # No registry answers here: the pull fails and the message says which image and why.
        ({"compose_path": "no-image.yml"},
         "Image dockerflow-test/no-such-image:1 is not on the engine and pulling it failed: "),
        ({"compose_path": "held-port.yml"},
         "host port 127.0.0.1:%d is taken (address already in use). A fixed host port cannot serve two instances "
         "or two colors at once: publish the container port alone (for example '8080')" % held_port),
    ]
    with socket.socket() as holder:  # another process's listener on the port the file fixes
        holder.bind(("127.0.0.1", held_port))
        holder.listen()
        results, _completed = run_tasks(flow_project, [("flow_deploy", dict(params, force=True)) for params, _expected in cases])
    for (params, expected), result in zip(cases, results, strict=True):
        assert_clean_failure(result)
        assert expected in result["msg"], (params, result["msg"])
    assert flow_project.snapshot() == before
    assert flow_project.answer(live)["color"] == "blue"


def test_a_fixed_host_port_cannot_hold_two_colors_or_two_instances(flow_project):
    port = free_ports(1)[0]
    flow_project.write_compose(compose({"ports": ["127.0.0.1:%d:8080" % port]}))
    flow_project.run("flow_deploy", {"health_path": "/health"})
    before = flow_project.snapshot()
    results, _completed = run_tasks(flow_project, [("flow_deploy", {"force": True}), ("flow_scale", {"scale": "+1"})])
    for result in results:
        assert_clean_failure(result)
        assert ("host port 127.0.0.1:%d is taken (port is already allocated). A fixed host port cannot serve two "
                "instances or two colors at once" % port) in result["msg"], result["msg"]
    assert flow_project.snapshot() == before
    assert flow_project.answer(flow_project.running("blue")[0])["color"] == "blue"
