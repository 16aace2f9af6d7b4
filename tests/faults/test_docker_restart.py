# -*- coding: utf-8 -*-
"""The Docker daemon restarted under load, on a private dockerd (tests/support/dockerd.py): the
host's main engine, which every other test uses, is never restarted.

On that engine run the registrator (installed by roles/registrator, restart policy
unless-stopped), three instances of a flow service whose Compose file says ``restart: always``,
and a plain container the registrator registers itself. The proxy runs on the main engine. While
the daemon is down, other processes take the host ports the containers had, so each of them must
come back on a new one (Docker hands out ephemeral ports anew on every start anyway; the test
makes it certain): every registration must follow its container, and the proxy serve again.
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from conftest import APP_V1, CONSUL_URL, FAST, assert_consistent, consistency, consul_get, report, wait_for
from integration.test_registrator import BASE_IMAGE, IMAGE, run_role
from support.dockerd import ExtraDockerd

PATH = "/restart"
COUNT = 3
COMPOSE = {"services": {"app": {"image": APP_V1, "ports": ["8080"], "restart": "always"}}}
MAIN_ENGINE = "unix:///var/run/docker.sock"  # where the proxy runs


@pytest.fixture
def private_engine(docker_client):
    daemon = ExtraDockerd()
    daemon.start()
    try:
        # The registrator image the integration tests built, when there is one: the role rebuilds it only if its
        # sources changed since (a label records their hash), which saves the build here.
        built = [IMAGE] if docker_client.images.list(name=IMAGE) else []
        for image in [APP_V1, BASE_IMAGE, *built]:
            daemon.load_image(image)
        yield daemon
    finally:
        daemon.cleanup()


def take_ports(ports):
    """Listening sockets on ``ports`` (127.0.0.1): nothing else can bind them while they are open."""
    taken = []
    for port in ports:
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the load's closed connections linger in TIME_WAIT
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        taken.append(holder)
    return taken


def registered_port(service_id):
    entry = (consul_get("/v1/agent/services") or {}).get(service_id) or {}
    return entry.get("Port")


def test_a_restarted_daemon_brings_the_instances_back_and_their_registrations_follow(
        private_engine, make_project, proxy, loads, tmp_path):
    # (private_engine first: fixtures are torn down in reverse, so the project is cleaned while its engine runs)
    run = uuid.uuid4().hex[:6]
    node = "dftest-restart-%s" % run
    rc, output, _changed = run_role(
        tmp_path, env={"DOCKER_HOST": private_engine.unix_url}, registrator_docker_socket=private_engine.socket,
        registrator_container_name="dftest-registrator-%s" % run, registrator_node=node, registrator_require_label="",
        registrator_image=IMAGE, registrator_base_image=BASE_IMAGE, registrator_consul_address=CONSUL_URL,
    )
    assert rc == 0, output[-3000:]

    engine = private_engine.client()
    project = make_project(COMPOSE)
    project.docker = engine
    project.proxy = proxy
    proxy.options["proxy_docker_host"] = MAIN_ENGINE
    project.run("flow_deploy", dict(FAST, docker_host=private_engine.unix_url, health_path="/health", scale=str(COUNT)))
    project.run("flow_proxy", dict(FAST, service_path=[PATH]))
    plain_name = "dftest-plain-%s" % run
    plain = engine.containers.run(APP_V1, name=plain_name, detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
                                  restart_policy={"Name": "always"}, labels={"SERVICE_NAME": plain_name, "dockerflow.test": "1"})
    plain_id = "%s:%s:8080" % (node, plain_name)
    wait_for(lambda: registered_port(plain_id), timeout=15, what="the registrator registering %s" % plain_name)
    load = loads(proxy, PATH)

    old_ports = [project.port_of(c) for c in project.running()] + [project.port_of(plain)]
    restart_started = time.time()
    private_engine.stop()
    holders = []
    try:
        holders = take_ports(old_ports)
        private_engine.start()
        engine = project.docker = private_engine.client()
        wait_for(lambda: len(project.running()) == COUNT and engine.containers.get(plain_name).status == "running",
                 timeout=60, what="the instances and the plain container running again")
    finally:
        for holder in holders:
            holder.close()
        if not private_engine.running():  # so that the cleanup finds an engine to remove the containers from
            private_engine.start()
            project.docker = private_engine.client()
    running_again = time.time() - restart_started
    new_ports = [project.port_of(c) for c in project.running()]
    assert not set(new_ports) & set(old_ports), "every container is on a new host port: %s -> %s" % (old_ports, new_ports)

    def registrations_follow():
        _facts, problems = consistency(project, COUNT)
        return not problems and registered_port(plain_id) == project.port_of(engine.containers.get(plain_name))

    try:
        wait_for(registrations_follow, timeout=45, interval=0.5, what="every registration on its container's new port")
    except AssertionError:
        _facts, problems = consistency(project, COUNT)
        raise AssertionError("45 s after the restart: %s; %s registered on %s, publishes %s" % (
            "; ".join(problems), plain_name, registered_port(plain_id), project.port_of(engine.containers.get(plain_name))))
    repaired = time.time() - restart_started
    wait_for(lambda: all(proxy.get(PATH, timeout=2)[0] == 200 for _request in range(COUNT * 2)), timeout=30, interval=0.2,
             what="the proxy serving %s again" % PATH)
    serving = time.time()
    time.sleep(3)
    failed_after = load.failures_between(serving, time.time())
    summary = load.stop()

    facts = assert_consistent(project, COUNT)
    assert failed_after == 0, "requests failed once the proxy served again: %s" % summary["first_failures"]
    report("docker daemon restarted", summary, True, running_again_s=round(running_again, 1),
           registrations_repaired_s=round(repaired, 1), serving_again_s=round(serving - restart_started, 1),
           failed_until_serving=load.failures_between(restart_started, serving), live=facts["live"])
