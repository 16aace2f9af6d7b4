# -*- coding: utf-8 -*-
"""tests/support/dockerd.py: an extra dockerd runs containers beside the main engine, survives a
restart and a kill, and leaves nothing behind, in the main engine or on the host."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
import uuid

import pytest

from conftest import APP_V1, wait_for
from support.dockerd import ExtraDockerd


def host_links():
    return set(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.split("\n"))


def link_names():
    return {line.split(":")[1].strip().split("@")[0] for line in host_links() if line}


def bridge_links():
    return {name for name in link_names() if name.startswith("br-")}


def answer(port):
    with urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=5) as response:
        return response.status


def processes_under(root):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    if root.encode() in handle.read():
                        found.append(pid)
            except OSError:
                pass
    return found


@pytest.fixture
def extra_daemon(docker_client):
    daemon = ExtraDockerd()
    daemon.start()
    yield daemon
    daemon.cleanup()


def test_runs_a_published_container_restarts_and_cleans_up(docker_client, extra_daemon):
    name = "dftest-extra-%s" % uuid.uuid4().hex[:8]
    extra_daemon.load_image(APP_V1)
    client = extra_daemon.client()
    network = client.networks.create(name, labels={"dockerflow.test": "1"})
    network_link = "br-" + network.id[:12]
    container = client.containers.run(APP_V1, detach=True, name=name, network=name, restart_policy={"Name": "always"},
                                      ports={"8080/tcp": ("127.0.0.1", None)}, labels={"dockerflow.test": "1"})
    container.reload()
    port = container.ports["8080/tcp"][0]["HostPort"]
    assert wait_for(lambda: _answers(port), timeout=20, what="the extra daemon's container on 127.0.0.1:%s" % port)

    # Nothing of it in the main engine: no container, network or image by that name.
    assert not docker_client.containers.list(all=True, filters={"name": name})
    assert not docker_client.networks.list(names=[name])
    assert container.id not in {c.id for c in docker_client.containers.list(all=True)}

    # The main engine's default bridge survives the extra daemon (whose own is dfbr-*), and a
    # container on it still starts.
    assert "docker0" in link_names() and extra_daemon.bridge in link_names()
    docker_client.containers.run("dockerflow-test/base:bookworm", ["true"], remove=True, labels={"dockerflow.test": "1"})

    extra_daemon.restart()
    assert extra_daemon.client().containers.get(name).status == "running"
    extra_daemon.restart(kill=True)
    client = extra_daemon.client()
    assert wait_for(lambda: client.containers.get(name).status == "running", timeout=20, what="restart after a kill")
    port = client.containers.get(name).ports["8080/tcp"][0]["HostPort"]
    assert wait_for(lambda: _answers(port), timeout=20, what="the container after the daemon was killed")

    root = extra_daemon.root
    assert network_link in bridge_links(), "the extra daemon's network has a br-* link in the host's namespace"
    extra_daemon.cleanup()
    assert not os.path.exists(root)
    assert not processes_under(root), "dockerd, containerd or shims outlived cleanup"
    with open("/proc/self/mountinfo") as handle:
        assert root not in handle.read()
    assert network_link not in bridge_links(), "the network's br-* link outlived cleanup"
    assert extra_daemon.bridge not in link_names() and "docker0" in link_names()


def _answers(port):
    try:
        return answer(port) == 200
    except OSError:
        return False


def test_reap_removes_a_daemon_whose_owner_died(docker_client):
    # The owner is a short-lived child process: it starts a daemon and exits without cleanup.
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from support.dockerd import ExtraDockerd\n"
        "daemon = ExtraDockerd().start()\n"
        "print(daemon.root)\n" % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    root = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.isdir(root) and processes_under(root)
    reaper = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support", "dockerd.py")
    output = subprocess.run([sys.executable, reaper, "reap"], capture_output=True, text=True, check=True).stdout
    assert root in output
    assert not os.path.exists(root) and not processes_under(root)


def test_containerd_namespaces_are_valid_whatever_the_directory_tag(tmp_path):
    """mkdtemp tags may hold or end with "_", which containerd refuses in a namespace (seen in CI:
    every container start failed). The command must name valid, distinct namespaces anyway."""
    valid = re.compile(r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$")
    namespaces = set()
    for tag in ("ab_", "_ab", "a_b", "ab"):
        root = tmp_path / ("dftest-dockerd-" + tag)
        root.mkdir()
        command = ExtraDockerd(None, None, root=str(root)).command()
        namespace = command[command.index("--containerd-namespace") + 1]
        plugins = command[command.index("--containerd-plugins-namespace") + 1]
        assert valid.match(namespace) and valid.match(plugins), command
        namespaces.add(namespace)
    assert len(namespaces) == 4
