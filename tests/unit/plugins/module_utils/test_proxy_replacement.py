# -*- coding: utf-8 -*-
"""proxy_replacement's Docker side on an in-memory engine: the order of a replacement, its undo when the new
container does not come up, and what the next run does with a replacement a killed run left half-done.
The real engine and HAProxy: tests/integration/test_proxy_replace.py."""

from __future__ import annotations

import types

import docker.errors
import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import generation_command
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import ADMIN_SOCKET
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_replacement import RETIRING, Replacement

NAME = "dockerflow-proxy"
READY = "[NOTICE]   (1) : New worker (8) forked\n[NOTICE]   (1) : Loading success.\n"


class Engine:
    """The Docker API calls a replacement makes, on containers by name; ``broken_images`` exit when started."""

    base_url = "http://engine.test:2375"  # a remote engine: the proxy's CLI is asked through exec (proxy_cli)

    def __init__(self):
        self.containers = {}
        self.calls = []  # (call, name) in order
        self.broken_images = set()
        self.serving = "abc123"  # the generation the proxy's runtime API reports

    def add(self, name, image="haproxy:3.0", status="running", policy="unless-stopped", log=READY):
        self.containers[name] = {"Id": "%012d" % (len(self.containers) + 1) + "f" * 52, "Image": image,
                                 "State": {"Status": status, "ExitCode": 0},
                                 "Config": {"Image": image, "Labels": {"dockerflow.proxy": "true"}, "Cmd": []},
                                 "HostConfig": {"RestartPolicy": {"Name": policy}}, "log": log}

    def _get(self, name):
        if name not in self.containers:
            raise docker.errors.NotFound("No such container: %s" % name)
        return self.containers[name]

    def inspect_container(self, name):
        return self._get(name)

    def containers_named(self, **filters):
        return [{"Names": ["/" + name]} for name in self.containers if filters["filters"]["name"] in name]

    def rename(self, name, new):
        self.calls.append(("rename", name, new))
        self.containers[new] = self.containers.pop(name)

    def create_container(self, image, name, user, command, labels, host_config):
        self.calls.append(("create", name))
        self.add(name, image, "created", host_config["restart_policy"]["Name"], log="")
        self.containers[name]["Config"]["Cmd"] = command
        self.containers[name]["HostConfig"]["Ulimits"] = host_config.get("ulimits")

    def start(self, name):
        self.calls.append(("start", name))
        container = self._get(name)
        broken = container["Image"] in self.broken_images
        container["State"] = {"Status": "exited" if broken else "running", "ExitCode": 1 if broken else 0}
        container["log"] = "[ALERT]    (1) : config : cannot open haproxy.cfg\n" if broken else READY

    def kill(self, name, signal):
        self.calls.append(("kill %s" % signal, name))
        self._get(name)["State"]["Status"] = "exited"  # soft-stopped: its workers finished at once

    def update_container(self, name, restart_policy):
        self.calls.append(("restart policy %s" % restart_policy["Name"], name))
        self._get(name)["HostConfig"]["RestartPolicy"] = restart_policy

    def remove_container(self, name, force=False):
        self.calls.append(("remove", name))
        self._get(name)
        del self.containers[name]

    def logs(self, name, stdout=True, stderr=True, tail=20):
        return self._get(name)["log"].encode()

    def exec_create(self, name, command):
        self.calls.append(("exec", name))
        return {"Id": command}

    def exec_start(self, command):
        if any(generation_command() in part for part in command):  # what the newest worker reports (live_map)
            return ('type=str, found=yes, idx=tree, key=".generation", value="%s", type="str"\n' % self.serving).encode()
        return b"Pid: 8\n" if "show info" in command else b""

    def exec_inspect(self, _exec_id):
        return {"ExitCode": 0}

    def inspect_image(self, image):
        return {}

    def inspect_volume(self, volume):
        return {}

    def create_host_config(self, **options):
        return options


@pytest.fixture
def engine():
    return Engine()


def node_on(engine, image="haproxy:3.1", **more):
    api = types.SimpleNamespace(**{name: getattr(engine, name) for name in dir(Engine) if not name.startswith("_")})
    api.containers = engine.containers_named
    return ProxyNode(types.SimpleNamespace(api=api), ProxySettings(), name=NAME, image=image, **more)


def names(engine):
    return sorted(engine.containers)


def test_the_new_container_takes_over_then_the_old_one_soft_stops_and_goes(engine):
    engine.add(NAME)
    old_id = engine.containers[NAME]["Id"]
    assert Replacement(node_on(engine)).replace("abc123", timeout=1) is True
    retiring = "%s%s%s" % (NAME, RETIRING, old_id[:12])
    steps = [call for call in engine.calls if not call[0].startswith("exec")]
    assert steps == [("rename", NAME, retiring), ("create", NAME), ("start", NAME),
                     ("restart policy no", retiring), ("kill SIGUSR1", retiring), ("remove", retiring)]
    new = engine.containers[NAME]
    assert names(engine) == [NAME] and new["Image"] == "haproxy:3.1" and new["Config"]["Cmd"][-2:] == ["-x", ADMIN_SOCKET]
    assert new["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}, "the old one's restart policy"
    saved = [call for call in engine.calls if call[0].startswith("exec")]
    assert engine.calls.index(saved[0]) < engine.calls.index(("rename", NAME, retiring)), \
        "the servers' state is saved for the new worker before it starts"


@pytest.mark.parametrize("asked, wanted", [({}, 65536), ({"asked_for": {"proxy_nofile"}, "nofile": 4096}, 4096)])
def test_the_new_container_keeps_the_old_ones_nofile_limit_unless_the_run_sets_another(engine, asked, wanted):
    engine.add(NAME)
    engine.containers[NAME]["HostConfig"]["Ulimits"] = [{"Name": "nofile", "Soft": 65536, "Hard": 65536}]
    Replacement(node_on(engine, **asked)).replace("abc123", timeout=1)
    assert engine.containers[NAME]["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": wanted, "Hard": wanted}]


def test_a_new_container_that_exits_is_removed_and_the_old_one_gets_its_name_back_untouched(engine):
    engine.add(NAME)
    old_id = engine.containers[NAME]["Id"]
    engine.broken_images.add("haproxy:3.1")
    with pytest.raises(FlowError) as failed:
        Replacement(node_on(engine)).replace("abc123", timeout=1)
    assert failed.value.msg == ("Replacing proxy dockerflow-proxy failed, so the old container keeps serving: the new "
                                "container exited with code 1: [ALERT]    (1) : config : cannot open haproxy.cfg")
    assert names(engine) == [NAME] and engine.containers[NAME]["Id"] == old_id
    assert engine.containers[NAME]["State"]["Status"] == "running"
    assert not [call for call in engine.calls if call[0].startswith(("kill", "restart policy"))], "never stopped"


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_half_done_replacement_whose_new_container_serves_is_finished(engine, check_mode):
    engine.add(NAME + RETIRING + "0123456789ab")
    engine.add(NAME, image="haproxy:3.1")
    done = Replacement(node_on(engine)).settle(check_mode=check_mode)
    assert done == ["%s the replacement of proxy dockerflow-proxy that a run left half-done "
                    "(dockerflow-proxy-retiring-0123456789ab)" % ("would finish" if check_mode else "finished")]
    assert names(engine) == ([NAME, NAME + RETIRING + "0123456789ab"] if check_mode else [NAME])


@pytest.mark.parametrize("left", ["no new container", "a new container that never started"])
def test_a_half_done_replacement_without_a_serving_new_container_is_undone(engine, left):
    engine.add(NAME + RETIRING + "0123456789ab")
    if left == "a new container that never started":
        engine.add(NAME, image="haproxy:3.1", status="created", log="")
    done = Replacement(node_on(engine)).settle()
    assert done == ["undid the replacement of proxy dockerflow-proxy that a run left half-done "
                    "(dockerflow-proxy-retiring-0123456789ab)"]
    assert names(engine) == [NAME] and engine.containers[NAME]["Image"] == "haproxy:3.0"


def test_an_old_container_a_killed_run_had_soft_stopped_is_started_again_with_its_restart_policy(engine):
    engine.add(NAME + RETIRING + "0123456789ab", status="exited", policy="no")
    engine.add(NAME, image="haproxy:3.1", status="exited", policy="always", log="")
    Replacement(node_on(engine)).settle()
    old = engine.containers[NAME]
    assert old["Image"] == "haproxy:3.0" and old["State"]["Status"] == "running"
    assert old["HostConfig"]["RestartPolicy"] == {"Name": "always"}


def test_nothing_left_means_nothing_to_settle(engine):
    engine.add(NAME)
    assert Replacement(node_on(engine)).settle() == [] and engine.calls == []
