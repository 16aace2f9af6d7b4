# -*- coding: utf-8 -*-
"""The proxy's runtime API and master CLI over a connection of the module's own (proxy_cli), on a real proxy.

On this machine the engine is on a local unix socket and the proxy runs on this host's network, so a module
connects to HAProxy itself instead of running the helper script with ``docker exec`` (~0.1 s each). The exec
path stays what a remote engine uses: it answers the same here, and tests/cluster runs it against remote engines.
"""

from __future__ import annotations

import time

from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_cli import shares_network_namespace
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
from conftest import APP_V2

PROXY_HOST_EXEC = "bash /usr/local/etc/haproxy/dockerflow-cli.sh"
RELOAD_EXEC = "bash /usr/local/etc/haproxy/dockerflow-reload.sh"


def node_of(docker_client, proxy):
    settings = ProxySettings(admin_port=proxy.options["proxy_admin_port"])
    return ProxyNode(docker_client, settings, name=proxy.name, master_port=proxy.options["proxy_master_port"])


def exec_commands(docker_client, container_name, since, until):
    """The commands docker exec ran in ``container_name`` between the two times (the engine's own events)."""
    events = docker_client.api.events(since=since, until=until, decode=True,
                                      filters={"type": "container", "event": "exec_start", "container": container_name})
    return [event["Action"].split(": ", 1)[1] for event in events]


def test_on_the_proxy_host_the_cli_answers_directly_as_through_exec(routed_project, proxy, docker_client):
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    direct, through_exec = node_of(docker_client, proxy), node_of(docker_client, proxy)
    through_exec.direct = False

    assert direct.backends() == through_exec.backends()
    assert direct.direct is True
    backend = "be_%s_blue" % routed_project.service
    assert direct.servers_up(backend) == through_exec.servers_up(backend) == 1
    assert direct.master("show proc").splitlines()[0] == through_exec.master("show proc").splitlines()[0]
    # The proxy runs on this host's network; an instance on its Compose network is in a namespace of its own.
    app = docker_client.containers.get("%s-app-blue-1" % routed_project.name)
    assert shares_network_namespace(proxy.container().attrs["State"]["Pid"])
    assert not shares_network_namespace(app.attrs["State"]["Pid"])

    started = time.monotonic()
    for _query in range(10):
        direct.backends()
    direct_seconds = time.monotonic() - started
    started = time.monotonic()
    for _query in range(10):
        through_exec.backends()
    assert direct_seconds < time.monotonic() - started  # ten round trips against ten docker execs


def test_a_switch_on_the_proxy_host_runs_no_cli_command_through_exec(routed_project, proxy, docker_client):
    """Fails on the code before proxy_cli: each runtime and master command was a docker exec of the helper."""
    routed_project.run("flow_deploy", {"health_path": "/health"})
    routed_project.run("flow_proxy", {"service_path": ["/demo"]})
    routed_project.set_image(APP_V2)
    routed_project.run("flow_deploy", {"health_path": "/health"})
    since = int(time.time())
    switched = routed_project.run("flow_proxy")
    time.sleep(1.1)  # the events' times are whole seconds
    until = int(time.time())
    assert switched["color"] == "green" and switched["servers_up"] == 1, switched

    commands = exec_commands(docker_client, proxy.name, since, until)
    assert not [command for command in commands if command.startswith(PROXY_HOST_EXEC)], commands
    # A switch of color only: one exec of the reload script, which writes the map's lines under the running body
    # ("recolor") and does not reload; the worker's map is swapped through the master CLI (live_map).
    reloads = [command for command in commands if command.startswith(RELOAD_EXEC)]
    assert len(reloads) == 1 and " recolor " in reloads[0] and reloads[0].endswith(" green"), commands
    assert not [command for command in commands if command.startswith("haproxy")], commands
    assert proxy.get("/demo")[1]["color"] == "green"
