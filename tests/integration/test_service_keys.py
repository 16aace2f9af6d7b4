# -*- coding: utf-8 -*-
"""The long tail of Compose service keys reaches every instance on the real engine (API 1.41):
flow_deploy creates the instances with them and flow_scale's clones keep them, as ``docker
inspect`` and the processes inside the containers show; the network gets its ipam and the side
target its fixed address. The mapping itself is unit-tested
(tests/unit/plugins/module_utils/backends/test_container_spec.py)."""

from __future__ import annotations

import os
import random
import time

from conftest import APP_V1, APP_V2, BASE_IMAGE

MIB = 1024**2
SERVICE_KEYS = {
    "platform": "linux/amd64",
    "runtime": "runc",
    "tty": True,
    "stdin_open": True,
    "sysctls": {"net.core.somaxconn": 1024},
    "ulimits": {"nofile": {"soft": 4096, "hard": 8192}, "core": 0},
    "mem_limit": "96m",
    "mem_reservation": "32m",
    "cpus": 0.5,
    "cpu_shares": 512,
    "shm_size": "16m",
    "dns": ["192.0.2.53"],
    "dns_search": ["flow.test"],
    "dns_opt": ["ndots:2"],
    "security_opt": ["no-new-privileges:true"],
    "group_add": ["1234"],
    "ipc": "shareable",
}


def test_the_long_tail_keys_reach_every_instance_and_its_clones(flow_project):
    subnet = "10.199.%d" % random.randint(0, 255)  # a subnet of its own on the shared engine
    flow_project.write_compose(
        {
            "services": {
                "app": dict({"image": APP_V1, "ports": ["8080"], "depends_on": ["db"], "networks": ["back"]}, **SERVICE_KEYS),
                # a side target may use what a blue-green target may not: it runs one instance
                "db": {"image": BASE_IMAGE, "command": "sleep infinity", "pid": "host",
                       "networks": {"back": {"ipv4_address": subnet + ".9"}}},
            },
            "networks": {"back": {"ipam": {"config": [{"subnet": subnet + ".0/24", "gateway": subnet + ".1"}]}}},
        }
    )
    deployed = flow_project.run("flow_deploy")
    assert (deployed["color"], deployed["release"]) == ("blue", 1)
    flow_project.run("flow_scale", {"scale": "+1"})  # the clone is made from the first instance's inspect data
    instances = flow_project.running("blue")
    assert len(instances) == 2
    for container in instances:
        container.reload()
        config, host = container.attrs["Config"], container.attrs["HostConfig"]
        assert (config["Tty"], config["OpenStdin"]) == (True, True), container.name
        assert host["Runtime"] == "runc"
        assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
        assert sorted((u["Name"], u["Soft"], u["Hard"]) for u in host["Ulimits"]) == [("core", 0, 0), ("nofile", 4096, 8192)]
        assert (host["Memory"], host["MemoryReservation"], host["NanoCpus"]) == (96 * MIB, 32 * MIB, 500_000_000)
        assert (host["CpuShares"], host["ShmSize"]) == (512, 16 * MIB)
        assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (["192.0.2.53"], ["flow.test"], ["ndots:2"])
        assert host["SecurityOpt"] == ["no-new-privileges:true"]
        assert (host["GroupAdd"], host["IpcMode"]) == (["1234"], "shareable")
        # what the process inside sees
        assert _inside(container, "cat /proc/sys/net/core/somaxconn") == "1024"
        # the app's own limits (PID 1): an exec'd shell's limits come from the exec path, not the container
        assert _inside(container, "grep 'Max open files' /proc/1/limits").split()[3:5] == ["4096", "8192"]
        assert _inside(container, "grep NoNewPrivs /proc/self/status") == "NoNewPrivs:\t1"
        assert "1234" in _inside(container, "id -G").split()
        assert flow_project.answer(container)["color"] == "blue"
    db = flow_project.docker.containers.get("%s-db-1" % flow_project.name)
    assert db.attrs["HostConfig"]["PidMode"] == "host"
    network = "%s_back" % flow_project.name
    assert db.attrs["NetworkSettings"]["Networks"][network]["IPAddress"] == subnet + ".9"
    ipam = flow_project.docker.networks.get(network).attrs["IPAM"]["Config"]
    assert ipam == [{"Subnet": subnet + ".0/24", "Gateway": subnet + ".1"}]


def _inside(container, script):
    exit_code, output = container.exec_run(["bash", "-c", script])
    assert exit_code == 0, output
    return output.decode().strip()


def test_label_file_blkio_config_hooks_and_link_local_ips_reach_the_engine(flow_project):
    """label_file labels, blkio_config throttles, a post_start hook (in the instances and their clones) and a
    side target's link_local_ips on the real engine; a failing post_start hook fails the next deploy in one line
    naming it and its exit code, leaves no container of the new color, and the live color keeps running."""
    flow_project.write("app.labels", "com.example.tier=web\ncom.example.owner=file\n")
    app = {
        "image": APP_V1, "ports": ["8080"], "depends_on": ["db"], "networks": ["back"],
        "label_file": "./app.labels", "labels": {"com.example.owner": "compose"},
        "blkio_config": {"device_read_bps": [{"path": "/dev/vda", "rate": "12mb"}],
                         "device_write_iops": [{"path": "/dev/vda", "rate": 30}]},
        "post_start": [{"command": "sh -c 'echo \"$$HOOK_WORD\" > /tmp/post-start'", "environment": ["HOOK_WORD=started"]}],
    }
    flow_project.write_compose(
        {
            "services": {
                "app": app,
                "db": {"image": BASE_IMAGE, "command": "sleep infinity",
                       "networks": {"back": {"link_local_ips": ["169.254.77.7"]}}},
            },
            "networks": {"back": {}},
        }
    )
    flow_project.run("flow_deploy")
    flow_project.run("flow_scale", {"scale": "+1"})
    instances = flow_project.running("blue")
    assert len(instances) == 2
    for container in instances:
        container.reload()
        labels, host = container.attrs["Config"]["Labels"], container.attrs["HostConfig"]
        assert (labels["com.example.tier"], labels["com.example.owner"]) == ("web", "compose")
        assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 12 * MIB}]
        assert host["BlkioDeviceWriteIOps"] == [{"Path": "/dev/vda", "Rate": 30}]
        assert _inside(container, "cat /tmp/post-start") == "started", container.name  # the clone ran it too
    db = flow_project.docker.containers.get("%s-db-1" % flow_project.name)
    endpoint = db.attrs["NetworkSettings"]["Networks"]["%s_back" % flow_project.name]
    assert endpoint["IPAMConfig"]["LinkLocalIPs"] == ["169.254.77.7"]

    app["post_start"] = [{"command": ["sh", "-c", "echo no warm-up; exit 3"]}]
    flow_project.write_compose({"services": {"app": app, "db": {"image": BASE_IMAGE, "command": "sleep infinity",
                                "networks": {"back": {"link_local_ips": ["169.254.77.7"]}}}}, "networks": {"back": {}}})
    failed = flow_project.run("flow_deploy", expect_failure=True)
    assert "post_start[0] (sh -c echo no warm-up; exit 3)" in failed["msg"] and "exited 3: no warm-up" in failed["msg"]
    assert flow_project.containers("green") == []
    assert len(flow_project.running("blue")) == 2


def test_a_pre_stop_hook_runs_before_flow_stop_old_stops_the_old_color(flow_project):
    """pre_stop hooks run in each old instance before flow_stop_old stops it (they write to a bind mount)."""
    out = os.path.join(flow_project.dir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    app = {"image": APP_V1, "ports": ["8080"], "volumes": ["./out:/out"],
           "pre_stop": [{"command": ["sh", "-c", "echo stopping > /out/$$(hostname)"]}]}
    flow_project.write_compose({"services": {"app": app}})
    flow_project.run("flow_deploy")
    blue = flow_project.running("blue")
    flow_project.set_image(APP_V2)
    flow_project.run("flow_deploy")
    assert os.listdir(out) == []  # nothing stopped yet
    flow_project.run("flow_stop_old")
    assert flow_project.running("blue") == []
    for container in blue:
        with open(os.path.join(out, container.attrs["Config"]["Hostname"])) as handle:
            assert handle.read().strip() == "stopping", container.name


def test_the_targets_pull_schedule_pulls_only_an_image_the_engine_last_pulled_that_long_ago(flow_project):
    """With flow_deploy's pull option unset, the target's Compose pull_policy decides. ``daily`` deploys an
    image the engine tagged a moment ago without pulling it; ``every_1s``, two seconds after the tag, pulls it
    (no registry answers here: the deploy fails naming the pull, and the live color keeps running); the pull
    option, when given, wins."""
    image = "%s-app:scheduled" % flow_project.name
    flow_project.docker.images.get(APP_V1).tag(image)
    try:
        app = {"image": image, "ports": ["8080"], "pull_policy": "daily"}
        flow_project.write_compose({"services": {"app": app}})
        flow_project.run("flow_deploy")
        assert len(flow_project.running("blue")) == 1
        time.sleep(2)
        app.update(pull_policy="every_1s", environment=["RELEASE=2"])
        flow_project.write_compose({"services": {"app": app}})
        failed = flow_project.run("flow_deploy", expect_failure=True)
        assert "Pulling %s failed" % image in failed["msg"], failed["msg"]
        assert flow_project.containers("green") == [] and len(flow_project.running("blue")) == 1
        flow_project.run("flow_deploy", {"pull": "missing"})
        assert len(flow_project.running("green")) == 1
    finally:
        flow_project.docker.images.remove(image, force=True)


def test_pre_start_steps_run_once_per_release_before_its_instances_and_a_failing_one_deploys_nothing(flow_project):
    """pre_start steps run in order, each in its own container (its own image, or the service's) with the
    service's environment, volumes and networks, before the release's instances are created; their containers
    are removed. A step that exits non-zero fails the deploy in one line naming it, its exit code and last output
    line: no instance of the new color, the live color keeps running."""
    app = {
        "image": APP_V1, "ports": ["8080"], "volumes": ["data:/data"], "environment": ["GREETING=hello"],
        "scale": 2,
        "pre_start": [
            {"image": BASE_IMAGE, "command": "sh -c 'echo $$GREETING $$STEP $$DOCKERFLOW_RELEASE >> /data/migrated'",
             "environment": ["STEP=migrate"]},
            {"command": ["sh", "-c", "test -s /data/migrated"]},
        ],
    }
    flow_project.write_compose({"services": {"app": app}, "volumes": {"data": {}}})
    flow_project.run("flow_deploy")
    blue = flow_project.running("blue")
    assert len(blue) == 2
    assert _inside(blue[0], "cat /data/migrated") == "hello migrate 1"  # once for the release, not per instance
    leftovers = flow_project.docker.containers.list(all=True, filters={"label": "dockerflow.pre-start"})
    assert [c.name for c in leftovers if c.name.startswith(flow_project.name)] == []

    app["pre_start"] = [{"command": ["sh", "-c", "echo relation users does not exist; exit 4"]}]
    flow_project.write_compose({"services": {"app": app}, "volumes": {"data": {}}})
    failed = flow_project.run("flow_deploy", expect_failure=True)
    assert "pre_start[0] (sh -c echo relation users does not exist; exit 4)" in failed["msg"], failed["msg"]
    assert "exited 4: relation users does not exist" in failed["msg"]
    assert flow_project.containers("green") == [] and len(flow_project.running("blue")) == 2
