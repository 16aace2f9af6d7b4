# -*- coding: utf-8 -*-
"""The registrator role and daemon against the real engine and Consul.

The role builds the registrator image from the harness's python3 stand-in base and starts it
the way a user would; the tests then start containers with the plain docker CLI (not the
modules) and watch the agent. Each test module run (one per xdist worker) has its own
registrator with its own node name, and that registrator only looks at containers carrying
this run's label, so tests running beside it on the same engine and agent are left alone.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
import uuid

import docker
import pytest
import yaml

from conftest import APP_V1, CONSUL_URL, assert_molecule_sequence_ran, consul_get, consul_put

RUN = uuid.uuid4().hex[:8]
NODE = "dockerflow-test-reg-%s" % RUN
LABEL = "dockerflow.test.registrator"
NAME = "dockerflow-test-registrator-%s" % RUN
BASE_IMAGE = "dockerflow-test/python:3"
IMAGE = "dockerflow-test/registrator:test"
RESYNC = 10
ANSIBLE_PLAYBOOK = os.environ.get("DOCKERFLOW_ANSIBLE_PLAYBOOK", "ansible-playbook")
META_REGISTRATOR = "dockerflow-registrator"


def role_vars(**extra):
    values = {
        "registrator_base_image": BASE_IMAGE,
        "registrator_image": IMAGE,
        "registrator_container_name": NAME,
        "registrator_consul_address": CONSUL_URL,
        "registrator_ip": "127.0.0.1",
        "registrator_node": NODE,
        "registrator_require_label": "%s=%s" % (LABEL, RUN),
        "registrator_resync_interval": RESYNC,
        "registrator_check_interval": "1s",
    }
    values.update(extra)
    return values


def run_role(tmp_path, env=None, **extra):
    """ansible-playbook with the role on localhost (``env`` added to the environment, e.g. a DOCKER_HOST);
    returns (rc, output, changed count)."""
    play = [{"hosts": "localhost", "gather_facts": False,
             "roles": [dict({"role": "dockerflow.flow.registrator"}, **role_vars(**extra))]}]
    path = tmp_path / ("registrator-%s.yml" % uuid.uuid4().hex[:6])
    path.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               **(env or {}))
    completed = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
         str(path)], env=env, capture_output=True, text=True, timeout=600, check=False)
    output = completed.stdout + completed.stderr
    found = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", output)
    return completed.returncode, output, int(found.group(1)) if found else None


def services():
    return consul_get("/v1/agent/services") or {}


def ours():
    return {sid: entry for sid, entry in services().items() if (entry.get("Meta") or {}).get(META_REGISTRATOR) == NODE}


def docker_run(name, *args, image=APP_V1, label=True):
    """`docker run -d --name NAME ARGS IMAGE`; returns the seconds it took."""
    command = ["docker", "run", "-d", "--name", name, "--label", "dockerflow.test=1"]
    if label:
        command += ["--label", "%s=%s" % (LABEL, RUN)]
    command += list(args) + [image]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    return started


def wait_until(predicate, timeout, interval=0.02):
    """Poll ``predicate``; (value, seconds waited) once truthy, else AssertionError."""
    started = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError("still false after %.1fs" % timeout)
        time.sleep(interval)


def started_at(docker_client, name):
    """State.StartedAt of a container as a Unix time (the engine runs on this host: same clock)."""
    text = docker_client.containers.get(name).attrs["State"]["StartedAt"]
    seconds, _dot, fraction = text.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + float("0." + (fraction or "0"))


def host_port(docker_client, name, port="8080/tcp"):
    container = docker_client.containers.get(name)
    return int(container.ports[port][0]["HostPort"])


@pytest.fixture(scope="module")
def registrator(docker_client, consul_agent, tmp_path_factory):
    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail("Test image %s is missing; `make images` builds it." % BASE_IMAGE)
    tmp_path = tmp_path_factory.mktemp("registrator")
    rc, output, _changed = run_role(tmp_path)
    try:
        assert rc == 0, output
        yield tmp_path
    finally:
        try:
            docker_client.containers.get(NAME).remove(force=True)
        except docker.errors.NotFound:
            pass
        for service_id in ours():
            consul_put("/v1/agent/service/deregister/%s" % service_id)


@pytest.fixture
def containers(docker_client):
    """Names for this test's containers, removed afterwards."""
    made = []

    def name(suffix):
        made.append("dockerflow-test-reg-%s-%s-%s" % (RUN, suffix, uuid.uuid4().hex[:4]))
        return made[-1]

    yield name
    for each in made:
        try:
            docker_client.containers.get(each).remove(force=True)
        except docker.errors.NotFound:
            pass


def logs(docker_client):
    return docker_client.containers.get(NAME).logs().decode("utf-8", "replace")


def test_plain_docker_run_is_registered_within_2s_and_removed_when_it_stops(registrator, docker_client, containers):
    name = containers("app")
    started = docker_run(name, "-p", "127.0.0.1::8080", "-e", "SERVICE_TAGS=blue,v1",
                         "-e", "SERVICE_CHECK_HTTP=/health", "-e", "SERVICE_CHECK_INTERVAL=1s")
    service_id = "%s:%s:8080" % (NODE, name)
    entry, _waited = wait_until(lambda: services().get(service_id), timeout=5)
    seen_at = time.time()
    latency = time.monotonic() - started
    start_latency = seen_at - started_at(docker_client, name)
    print("registered %.3fs after the container started (%.3fs after `docker run -d` was called)"
          % (start_latency, latency))
    assert start_latency < 2, "registered only %.3fs after the container started" % start_latency
    assert entry["Service"] == "app"
    assert (entry["Address"], entry["Port"]) == ("127.0.0.1", host_port(docker_client, name))
    assert entry["Tags"] == ["blue", "v1"]
    assert entry["Meta"][META_REGISTRATOR] == NODE
    assert entry["Meta"]["dockerflow-container"] == name

    def check():
        found = consul_get("/v1/agent/checks")
        return [c for c in found.values() if c.get("ServiceID") == service_id and c["Status"] == "passing"]

    [passing], _waited = wait_until(check, timeout=10, interval=0.2)
    assert passing["Type"] == "http"
    assert "http://127.0.0.1:%d/health" % entry["Port"] in passing["Output"]

    stopping = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "5", name], check=True, capture_output=True, timeout=60)
    stopped = time.monotonic()
    _gone, waited = wait_until(lambda: service_id not in services(), timeout=5)
    print("deregistered %.3fs after `docker stop` returned (the stop itself took %.3fs)" % (waited, stopped - stopping))
    assert waited < 2


def test_several_ports_and_per_port_names(registrator, docker_client, containers):
    name = containers("ports")
    docker_run(name, "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090", "-e", "SERVICE_NAME=books",
               "-e", "SERVICE_9090_NAME=books-metrics", "-e", "SERVICE_9090_TAGS=metrics")
    wanted = {"%s:%s:8080" % (NODE, name), "%s:%s:9090" % (NODE, name)}
    found = wait_until(lambda: {sid: e for sid, e in services().items() if sid in wanted} if wanted <= set(services()) else None,
                       timeout=5)[0]
    by_port = {sid.rsplit(":", 1)[1]: entry for sid, entry in found.items()}
    assert (by_port["8080"]["Service"], by_port["8080"]["Tags"]) == ("books-8080", [])
    assert (by_port["9090"]["Service"], by_port["9090"]["Tags"]) == ("books-metrics", ["metrics"])
    assert by_port["9090"]["Port"] == host_port(docker_client, name, "9090/tcp")


def test_flow_managed_ignored_and_unpublished_containers_are_not_registered(registrator, containers):
    flow = containers("flow")
    docker_run(flow, "-p", "127.0.0.1::8080", "--label", "dockerflow.service=books")
    ignored = containers("ignored")
    docker_run(ignored, "-p", "127.0.0.1::8080", "-e", "SERVICE_IGNORE=true")
    unpublished = containers("unpublished")
    docker_run(unpublished)
    other = containers("unlabelled")
    docker_run(other, "-p", "127.0.0.1::8080", label=False)
    # Events are handled in order: once a container started after them is registered, the
    # registrator has seen them all.
    witness = containers("witness")
    docker_run(witness, "-p", "127.0.0.1::8080")
    wait_until(lambda: "%s:%s:8080" % (NODE, witness) in services(), timeout=5)
    names = {entry["Meta"].get("dockerflow-container") for entry in ours().values()}
    assert not names & {flow, ignored, unpublished, other}


def register_entry(service_id, meta):
    body = {"ID": service_id, "Name": "dockerflow-test-reg-gone", "Address": "127.0.0.1", "Port": 9, "Meta": meta}
    consul_put("/v1/agent/service/register", json.dumps(body).encode())


def test_dangling_entries_are_removed_at_the_resync_on_start_and_others_are_kept(registrator, docker_client,
                                                                                 containers):
    live = containers("live")
    docker_run(live, "-p", "127.0.0.1::8080")
    live_id = "%s:%s:8080" % (NODE, live)
    wait_until(lambda: live_id in services(), timeout=5)
    dangling = "%s:dockerflow-test-reg-gone-%s:8080" % (NODE, RUN)
    foreign = "dockerflow-test-reg-other-node-%s:gone:8080" % RUN
    unmarked = "dockerflow-test-reg-unmarked-%s" % RUN
    register_entry(dangling, {META_REGISTRATOR: NODE, "dockerflow-container": "gone"})
    register_entry(foreign, {META_REGISTRATOR: "dockerflow-test-reg-other-node-%s" % RUN})
    register_entry(unmarked, {})
    try:
        docker_client.containers.get(NAME).restart(timeout=5)
        _gone, waited = wait_until(lambda: dangling not in services(), timeout=10)
        print("dangling entry removed %.3fs after the registrator restarted" % waited)
        present = services()
        assert foreign in present and unmarked in present
        assert live_id in present
        # The log line follows the Consul call; Docker's log copy may lag behind it.
        wait_until(lambda: "(dangling)" in logs(docker_client), timeout=5, interval=0.2)
    finally:
        for service_id in (dangling, foreign, unmarked):
            consul_put("/v1/agent/service/deregister/%s" % service_id)


def test_periodic_resync_removes_dangling_entries_while_running(registrator):
    dangling = "%s:dockerflow-test-reg-late-%s:8080" % (NODE, RUN)
    register_entry(dangling, {META_REGISTRATOR: NODE})
    try:
        _gone, waited = wait_until(lambda: dangling not in services(), timeout=RESYNC + 5, interval=0.2)
        print("dangling entry removed by the periodic resync after %.1fs" % waited)
    finally:
        consul_put("/v1/agent/service/deregister/%s" % dangling)


def test_sigterm_stops_it_cleanly_and_the_role_is_idempotent(registrator, docker_client):
    container = docker_client.containers.get(NAME)
    started = time.monotonic()
    container.stop(timeout=10)
    took = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, logs(docker_client)
    assert took < 3, "stopping took %.1fs" % took
    assert logs(docker_client).rstrip().endswith("registrator: stopped")

    rc, output, changed = run_role(registrator)
    assert rc == 0 and changed == 1, output  # starts the stopped container
    assert "Start the stopped registrator container" in output
    rc, output, changed = run_role(registrator)
    assert rc == 0 and changed == 0, output
    container.reload()
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    [mount] = container.attrs["Mounts"]
    assert (mount["Destination"], mount["RW"]) == ("/var/run/docker.sock", False)


# Last in the file (xdist keeps file order on each worker): it leaves the registrator with an extra tag.
def test_a_changed_setting_recreates_the_container_and_bad_settings_fail_clearly(registrator, docker_client):
    before = docker_client.containers.get(NAME).id
    rc, output, changed = run_role(registrator, registrator_tags=["dockerflow-test"])
    assert rc == 0 and changed >= 1, output
    after = docker_client.containers.get(NAME)
    assert after.id != before and "dockerflow-test" in after.attrs["Config"]["Cmd"]

    rc, output, _changed = run_role(registrator, registrator_state="running")
    assert rc != 0 and "registrator_state must be one of: present, absent" in output
    rc, output, _changed = run_role(registrator, registrator_consul_address="consul.example:8500")
    assert rc != 0 and "registrator_consul_address: must be http://HOST:PORT" in output


def test_upstream_mode_runs_gliderlabs_registrator_with_its_own_flags(tmp_path):
    """The upstream image cannot be pulled here: a stand-in docker CLI records what the role runs."""
    calls = tmp_path / "calls"
    fake = tmp_path / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        "printf '%%s\\n' \"$*\" >> %s\n"
        "case \"$1 $2\" in\n"
        "  'container inspect') echo '[]'; echo \"Error: No such container: $3\" >&2; exit 1;;\n"
        "  run*) echo 0123456789ab; exit 0;;\n"
        "esac\n"
        "exit 3\n" % calls
    )
    fake.chmod(0o755)
    rc, output, changed = run_role(tmp_path, registrator_use_upstream=True, registrator_docker_command=str(fake),
                                   registrator_container_name="registrator", registrator_tags=["a", "b"],
                                   registrator_consul_address="http://127.0.0.1:8500")
    assert rc == 0 and changed == 1, output
    recorded = calls.read_text().splitlines()
    assert recorded[0] == "container inspect registrator"
    run = recorded[1].split(" ")
    assert run[:9] == ["run", "--detach", "--name", "registrator", "--network", "host", "--restart", "unless-stopped",
                       "--volume"]
    assert run[9] == "/var/run/docker.sock:/tmp/docker.sock:ro"
    assert run[12:] == ["gliderlabs/registrator:v7", "-ip", "127.0.0.1", "-resync", str(RESYNC), "-cleanup",
                        "-tags", "a,b", "consul://127.0.0.1:8500"]
    assert len(recorded) == 2, "no image is built in upstream mode: %s" % recorded


@pytest.mark.long_running
def test_molecule_scenario_of_the_registrator_role(docker_client, consul_agent, tmp_path):
    """`molecule test` of roles/registrator: destroy, syntax, check, converge, idempotence, check, verify, destroy."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    molecule = os.path.join(os.path.dirname(os.sys.executable), "molecule")
    env = dict(os.environ, DOCKERFLOW_TEST_CONSUL=CONSUL_URL, MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"),
               PATH=os.path.dirname(os.sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", PY_COLORS="0")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)  # the scenario points at the repository's .build/collections
    completed = subprocess.run([molecule, "test"], cwd=os.path.join(root, "roles", "registrator"), env=env,
                               capture_output=True, text=True, timeout=900, check=False)
    text = completed.stdout + completed.stderr
    assert completed.returncode == 0, text[-6000:]
    assert_molecule_sequence_ran("registrator", text)
