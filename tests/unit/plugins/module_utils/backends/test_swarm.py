# -*- coding: utf-8 -*-
"""The pure parts of the Swarm backend: service specs from Compose, tasks as instances, names.

Everything that talks to a Swarm manager runs in tests/cluster/test_swarm_backend.py, on a
Docker-in-Docker cluster (the host's engine must never enter Swarm mode).
"""

from __future__ import annotations

import docker
import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends import swarm_spec, swarm_tasks
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.selection import select_backend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.swarm import SwarmBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.compose import load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_COLOR,
    LABEL_CONFIG_HASH,
    LABEL_RELEASE,
    LABEL_SERVICE,
)

NS = 10**9
COMPOSE = """
services:
  app:
    image: registry:5000/team/books-ms:1.2
    command: ["serve", "--port", "8080"]
    entrypoint: /bin/run
    environment: {MODE: prod}
    ports: ["8080"]
    labels: {team: books}
    networks:
      back: {aliases: [books]}
    volumes:
      - data:/data:ro
      - ./conf:/etc/app
    tmpfs: /run
    hostname: books
    working_dir: /srv
    user: "1000"
    stop_signal: SIGINT
    stop_grace_period: 20s
    healthcheck: {test: curl -f localhost:8080/health, interval: 2s, retries: 3}
    extra_hosts: ["db.local:10.0.0.7"]
    read_only: true
    init: true
    cap_drop: [ALL]
    logging: {driver: json-file, options: {max-size: 1m}}
    restart: always
    deploy:
      replicas: 3
      labels: {tier: web}
      placement:
        constraints: [node.role==worker]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      update_config: {parallelism: 1, order: start-first}
      resources: {limits: {cpus: "0.5", memory: 256m}}
networks:
  back: {}
volumes:
  data: {labels: {keep: "yes"}}
"""


@pytest.fixture
def project(write_file):
    return load_project(write_file("books/docker-compose.yml", COMPOSE), "books")


def build(project, name="app", replicas=2):
    spec = project.service(name)
    return swarm_spec.build_service_spec(
        spec, "books-app-blue", "registry:5000/team/books-ms:1.2@sha256:" + "a" * 64, replicas,
        {LABEL_SERVICE: "books-app"}, {LABEL_SERVICE: "books-app", "team": "books"}, {"MODE": "prod", "A": "1"},
        {"back": "books_back", "default": "books_default"}, ["app", "app-blue"], "books", project,
    )


def test_a_compose_target_becomes_a_replicated_service_with_host_mode_ports(project):
    wanted = build(project)
    assert wanted["Name"] == "books-app-blue"
    assert wanted["Mode"] == {"Replicated": {"Replicas": 2}}
    assert wanted["Labels"] == {"tier": "web", LABEL_SERVICE: "books-app"}
    # no fixed published port: each task gets an ephemeral port of its node, so replicas on one node do not clash
    assert wanted["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}]}
    assert wanted["UpdateConfig"] == {"Parallelism": 1, "Order": "start-first"}
    assert "RollbackConfig" not in wanted


def test_the_container_spec_carries_every_compose_setting(project):
    container = build(project)["TaskTemplate"]["ContainerSpec"]
    assert container["Image"].endswith("@sha256:" + "a" * 64)
    assert container["Command"] == ["/bin/run"] and container["Args"] == ["serve", "--port", "8080"]
    assert container["Env"] == ["A=1", "MODE=prod"]
    assert container["Labels"] == {LABEL_SERVICE: "books-app", "team": "books"}
    assert (container["Hostname"], container["Dir"], container["User"]) == ("books", "/srv", "1000")
    assert (container["StopSignal"], container["StopGracePeriod"]) == ("SIGINT", 20 * NS)
    assert container["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f localhost:8080/health"], "Interval": 2 * NS, "Retries": 3}
    assert container["Hosts"] == ["10.0.0.7 db.local"]
    assert container["ReadOnly"] is True and container["Init"] is True
    assert container["CapabilityDrop"] == ["ALL"] and "CapabilityAdd" not in container
    assert container["Mounts"] == [
        {"Type": "volume", "Target": "/data", "ReadOnly": True, "Source": "books_data",
         "VolumeOptions": {"Labels": {"keep": "yes", "com.docker.compose.project": "books"}}},
        {"Type": "bind", "Target": "/etc/app", "ReadOnly": False, "Source": project.directory + "/conf"},
        {"Type": "tmpfs", "Target": "/run"},
    ]


def test_the_task_template_has_placement_resources_restart_logging_and_networks(project):
    task = build(project)["TaskTemplate"]
    assert task["Placement"] == {
        "Constraints": ["node.role==worker"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
        "MaxReplicas": 2,
    }
    assert task["Resources"] == {"Limits": {"NanoCPUs": NS // 2, "MemoryBytes": 256 * 1024**2}}
    assert task["RestartPolicy"] == {"Condition": "any"}  # from restart: always, the deploy section has none
    assert task["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "1m"}}
    assert task["Networks"] == [{"Target": "books_back", "Aliases": ["app", "app-blue", "books"]}]


def test_a_minimal_service_spec_has_nothing_unset(write_file):
    minimal = load_project(write_file("m/docker-compose.yml", "services:\n  app:\n    image: app:1\n"), "m")
    wanted = swarm_spec.build_service_spec(
        minimal.service("app"), "m-app-green", "app:1", 1, {}, {}, {}, {"default": "m_default"}, [], "m", minimal,
    )
    assert wanted["TaskTemplate"] == {
        "ContainerSpec": {"Image": "app:1", "Labels": {}, "Env": []},
        "Networks": [{"Target": "m_default", "Aliases": []}],
    }
    assert wanted["EndpointSpec"] == {"Mode": "dnsrr", "Ports": []}


@pytest.mark.parametrize(
    "restart, deploy, expected",
    [
        ("on-failure:3", "", {"Condition": "on-failure", "MaxAttempts": 3}),
        ("no", "", {"Condition": "none"}),
        ("always", "\n    deploy: {restart_policy: {condition: on-failure, delay: 5s}}",
         {"Condition": "on-failure", "Delay": 5 * NS}),
    ],
)
def test_restart_policy_from_deploy_else_from_restart(write_file, restart, deploy, expected):
    text = 'services:\n  app:\n    image: app:1\n    restart: "%s"%s\n' % (restart, deploy)
    spec = load_project(write_file("r/docker-compose.yml", text), "r").service("app")
    wanted = swarm_spec.build_service_spec(spec, "r-app-blue", "app:1", 1, {}, {}, {}, {"default": "r_default"}, [], "r")
    assert wanted["TaskTemplate"]["RestartPolicy"] == expected


@pytest.mark.parametrize(
    "port, message",
    [
        ("{target: 8080, mode: ingress}", r"port 8080/tcp has mode ingress, which backend swarm does not use"),
        ("127.0.0.1::8080", r"port 8080/tcp names host_ip 127.0.0.1, which Swarm cannot bind"),
    ],
)
def test_ports_swarm_cannot_publish_are_refused_with_the_reason(write_file, port, message):
    text = "services:\n  app:\n    image: app:1\n    ports: [%s]\n" % (port if port.startswith("{") else '"%s"' % port)
    spec = load_project(write_file("p/docker-compose.yml", text), "p").service("app")
    with pytest.raises(FlowError, match=r"^service app: " + message):
        swarm_spec.build_service_spec(spec, "p-app-blue", "app:1", 1, {}, {}, {}, {"default": "p_default"}, [], "p")


def test_a_fixed_published_port_and_the_vip_endpoint_mode_are_kept(write_file):
    text = "services:\n  db:\n    image: db:1\n    ports: ['5432:5432']\n    deploy: {endpoint_mode: vip}\n"
    spec = load_project(write_file("v/docker-compose.yml", text), "v").service("db")
    wanted = swarm_spec.build_service_spec(spec, "v-db", "db:1", 1, {}, {}, {}, {"default": "v_default"}, [], "v")
    endpoint = wanted["EndpointSpec"]
    port = {"Protocol": "tcp", "TargetPort": 5432, "PublishMode": "host", "PublishedPort": 5432}
    assert endpoint == {"Mode": "vip", "Ports": [port]}


# -- the long tail of service keys (compose.engine_options) ---------------------------------------


def long_tail(write_file, body):
    """The Swarm service spec of service ``app`` with ``body`` (service keys) under it."""
    text = "services:\n  app:\n    image: app:1\n" + "".join("    %s\n" % line for line in body.splitlines())
    project = load_project(write_file("lt/docker-compose.yml", text), "lt")
    return swarm_spec.build_service_spec(
        project.service("app"), "lt-app-blue", "app:1", 1, {}, {}, {}, {"default": "lt_default"}, [], "lt", project
    )


def test_the_long_tail_keys_swarm_has_go_to_the_container_spec_resources_and_placement(write_file):
    wanted = long_tail(
        write_file,
        "tty: true\nstdin_open: true\ngroup_add: [audio]\ndns: [10.0.0.2]\ndns_search: [example.org]\n"
        "dns_opt: [ndots:1]\nsysctls: {net.core.somaxconn: 1024}\nulimits: {nofile: {soft: 1024, hard: 2048}}\n"
        "mem_limit: 64m\nmem_reservation: 32m\ncpus: 0.25\nplatform: linux/arm64/v8",
    )
    task = wanted["TaskTemplate"]
    container = task["ContainerSpec"]
    assert (container["TTY"], container["OpenStdin"], container["Groups"]) == (True, True, ["audio"])
    assert container["DNSConfig"] == {"Nameservers": ["10.0.0.2"], "Search": ["example.org"], "Options": ["ndots:1"]}
    assert container["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert container["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert task["Resources"] == {"Limits": {"MemoryBytes": 64 * 1024**2, "NanoCPUs": NS // 4},
                                 "Reservations": {"MemoryBytes": 32 * 1024**2}}
    assert task["Placement"] == {"Platforms": [{"OS": "linux", "Architecture": "arm64"}]}


def test_deploy_resources_win_over_mem_limit_and_cpus(write_file):
    wanted = long_tail(write_file, "mem_limit: 64m\ncpus: 2\ndeploy: {resources: {limits: {memory: 128m}}}")
    assert wanted["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 128 * 1024**2, "NanoCPUs": 2 * NS}}


@pytest.mark.parametrize(
    "body, key",
    [
        ("network_mode: host", "network_mode"),
        ("runtime: runc", "runtime"),
        ("privileged: true", "privileged"),
        ("devices: [/dev/fuse]", "devices"),
        ("security_opt: [no-new-privileges:true]", "security_opt"),
        ("pid: host", "pid"),
        ("ipc: host", "ipc"),
        ("cpu_shares: 512", "cpu_shares"),
        ("shm_size: 64m", "shm_size"),
        ("gpus: all", "gpus"),
        ("post_start: [{command: warm}]", "post_start"),
        ("pre_stop: [{command: flush}]", "pre_stop"),
        ("pre_start: [{command: migrate}]", "pre_start"),
    ],
)
def test_the_long_tail_keys_swarm_lacks_are_refused_in_one_line_naming_key_and_backend(write_file, body, key):
    with pytest.raises(FlowError) as info:
        long_tail(write_file, body)
    message = str(info.value)
    assert message.startswith("service app: %s is not supported by backend swarm: " % key)
    assert message.endswith("; remove it, or use backend container.") and "\n" not in message


def test_a_fixed_address_is_refused_naming_the_network_and_the_backend(write_file):
    text = "services:\n  app:\n    image: app:1\n    networks: {back: {ipv4_address: 10.0.9.9}}\nnetworks:\n  back: {}\n"
    spec = load_project(write_file("fa/docker-compose.yml", text), "fa").service("app")
    with pytest.raises(FlowError, match=r"^service app: networks\.back\.ipv4_address is not supported by backend swarm: "
                                        r"tasks get their addresses from the network; remove it, or use backend container\.$"):
        swarm_spec.refuse_swarm_unsupported(spec)


def test_the_swarm_backend_refuses_them_before_anything_changes(write_file):
    """The deploy step asks the backend before it takes the lock (steps/deploy.py): no engine call is needed."""
    text = "services:\n  app:\n    image: app:1\n    privileged: true\n  ok:\n    image: app:1\n    tty: true\n"
    project = load_project(write_file("rb/docker-compose.yml", text), "rb")
    backend = SwarmBackend.__new__(SwarmBackend)  # no engine: refuse_unsupported reads the spec only
    backend.refuse_unsupported(project.service("ok"))
    with pytest.raises(FlowError, match=r"^service app: privileged is not supported by backend swarm: "):
        backend.refuse_unsupported(project.service("app"))
    ContainerBackend.__new__(ContainerBackend).refuse_unsupported(project.service("app"))  # containers can


# -- names ----------------------------------------------------------------------------------------


def test_service_names():
    assert swarm_spec.service_name("books-app", "blue", 4) == "books-app-blue"
    assert swarm_spec.service_name("books-app", "plain", 4) == "books-app-r4"
    with pytest.raises(FlowError, match=r"^service_name='a{60}' is too long for Swarm: a{60}-green has 66 characters"):
        swarm_spec.service_name("a" * 60, "green", 1)


@pytest.mark.parametrize(
    "image, digests, expected",
    [
        ("reg:5000/team/app:1", ["reg:5000/team/app@sha256:abc"], "reg:5000/team/app:1@sha256:abc"),
        ("reg:5000/team/app", ["reg:5000/team/app@sha256:abc"], "reg:5000/team/app@sha256:abc"),
        ("app:1", ["other@sha256:abc"], "app:1"),
        ("app:1", None, "app:1"),
        ("app:1@sha256:old", ["app@sha256:new"], "app:1@sha256:new"),
    ],
)
def test_images_are_pinned_to_the_digest_the_manager_resolved(image, digests, expected):
    assert swarm_spec.pinned_image(image, digests) == expected


# -- tasks as instances -----------------------------------------------------------------------------

SERVICE_SPEC = {"Name": "books-app-blue", "Labels": {swarm_spec.LABEL_DOCKER_HEALTH: "true"}}


def task(state="running", err=None, ports=(), slot=2, node="n1", labels=None):
    return {
        "ID": "t" * 25,
        "ServiceID": "s1",
        "Slot": slot,
        "NodeID": node,
        "CreatedAt": "2026-01-01T00:00:00Z",
        "DesiredState": "running",
        "Spec": {"ContainerSpec": {"Image": "app:1", "Labels": labels if labels is not None else {
            LABEL_SERVICE: "books-app", LABEL_COLOR: "blue", LABEL_RELEASE: "7", LABEL_CONFIG_HASH: "h1"}}},
        "Status": {"State": state, "Err": err, "ContainerStatus": {"ExitCode": 0 if state == "running" else 1},
                   "PortStatus": {"Ports": [{"Protocol": "tcp", "TargetPort": t, "PublishedPort": p, "PublishMode": "host"}
                                            for t, p in ports]}},
    }


def test_a_running_task_is_a_healthy_running_instance_on_its_node():
    instance = swarm_tasks.task_instance(task(ports=[(8080, 30001)]), SERVICE_SPEC, "10.231.0.12")
    assert instance.name == "books-app-blue.2." + "t" * 25  # the task's container name
    assert (instance.service, instance.color, instance.release, instance.number) == ("books-app", "blue", 7, 2)
    assert (instance.status, instance.health, instance.config_hash) == ("running", "healthy", "h1")
    assert instance.ports == {"8080/tcp": 30001} and instance.address == "10.231.0.12"
    assert instance.as_dict()["address"] == "10.231.0.12" and instance.error is None


@pytest.mark.parametrize(
    "state, err, status, health",
    [
        ("pending", "no suitable node (1 node not available)", "created", "starting"),
        ("starting", None, "created", "starting"),
        ("failed", "task: non-zero exit (137): dockerexec: unhealthy container", "exited", "unhealthy"),
        ("rejected", "No such image: app:9", "exited", "starting"),
        ("orphaned", "node is down", "dead", "starting"),
    ],
)
def test_task_states_map_to_container_states_and_keep_the_engines_reason(state, err, status, health):
    instance = swarm_tasks.task_instance(task(state=state, err=err), SERVICE_SPEC, None)
    assert (instance.status, instance.health, instance.error) == (status, health, err)


def test_a_task_that_ended_before_its_healthcheck_passed_is_unhealthy_and_says_why():
    instance = swarm_tasks.task_instance(task(state="complete"), SERVICE_SPEC, None)
    assert (instance.status, instance.health) == ("exited", "unhealthy")
    assert instance.error == "it ended before its Docker HEALTHCHECK passed (Swarm stops a task whose check fails)"


def test_a_task_without_a_docker_healthcheck_has_no_health():
    assert swarm_tasks.task_instance(task(), {"Name": "x", "Labels": {}}, None).health is None


def test_a_service_scaled_to_zero_lists_the_instances_it_remembers_as_stopped():
    labels = {LABEL_SERVICE: "books-app", LABEL_COLOR: "green", LABEL_RELEASE: "3", swarm_spec.LABEL_STOPPED: "2"}
    spec = {"Name": "books-app-green", "Labels": labels,
            "TaskTemplate": {"ContainerSpec": {"Image": "app:2"}}}
    stopped = swarm_tasks.stopped_instances("svc1", spec)
    assert [(i.name, i.number, i.status, i.running, i.release, i.color) for i in stopped] == [
        ("books-app-green.1", 1, "exited", False, 3, "green"),
        ("books-app-green.2", 2, "exited", False, 3, "green"),
    ]
    assert all(swarm_tasks.is_stopped_instance(i) for i in stopped)
    assert not swarm_tasks.is_stopped_instance(swarm_tasks.task_instance(task(), SERVICE_SPEC, None))


def test_replicas_and_the_stopped_count_change_together_and_nothing_else():
    spec = {"Name": "s", "Labels": {"a": "b"}, "Mode": {"Replicated": {"Replicas": 3}}, "TaskTemplate": {"x": 1}}
    stopped = swarm_spec.with_replicas(spec, 0, 3)
    assert (swarm_spec.replicas_of(stopped), swarm_spec.stopped_of(stopped)) == (0, 3)
    assert stopped["Labels"] == {"a": "b", swarm_spec.LABEL_STOPPED: "3"} and stopped["TaskTemplate"] == {"x": 1}
    started = swarm_spec.with_replicas(stopped, 3, 0)
    assert started["Labels"] == {"a": "b"} and swarm_spec.replicas_of(started) == 3
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}  # the original is left alone


# -- choosing the backend ---------------------------------------------------------------------------


class EngineInfo:
    """Stands in for a DockerClient's info(): an engine in Swarm mode cannot run here (never the host's)."""

    def __init__(self, state, control):
        self.api = type("Api", (), {"base_url": "http+docker://localhost"})()
        self._info = {"Swarm": {"LocalNodeState": state, "ControlAvailable": control}}

    def info(self):
        return self._info


@pytest.mark.parametrize(
    "choice, state, control, expected",
    [
        ("auto", "active", True, SwarmBackend),
        ("auto", "active", False, ContainerBackend),
        ("auto", "inactive", False, ContainerBackend),
        ("container", "active", True, ContainerBackend),
        ("swarm", "active", True, SwarmBackend),
    ],
)
def test_auto_is_swarm_on_an_active_manager_only(choice, state, control, expected):
    backend = select_backend(EngineInfo(state, control), choice, "tcp://m:2376")
    assert isinstance(backend, expected)


@pytest.mark.parametrize(
    "state, control, what", [("active", False, "a Swarm worker"), ("inactive", False, "not in Swarm mode")]
)
def test_swarm_on_an_engine_that_is_no_manager_fails_naming_it(state, control, what):
    with pytest.raises(FlowError, match=r"^backend=swarm needs a Swarm manager, and the engine at tcp://m:2376 "
                                        r"\(docker_host\) is %s: point docker_host at a manager" % what):
        select_backend(EngineInfo(state, control), "swarm", "tcp://m:2376")


def test_a_bad_backend_names_the_allowed_values():
    with pytest.raises(FlowError, match=r"^backend='k8s' is not valid: use one of auto, container, swarm\.$"):
        select_backend(EngineInfo("inactive", False), "k8s", "x")


class _PrunedTaskHistory:
    """A manager that no longer knows a task it listed before (Swarm pruned the task history of a service
    a deploy updated in place)."""

    base_url = "https://manager:2376"

    def inspect_task(self, task_id):
        raise docker.errors.NotFound("task %s not found" % task_id)


def test_the_service_of_a_listed_task_is_known_after_swarm_pruned_the_task():
    # Seen on the cluster: release 4 replacing release 3 in green failed with "inspecting task ...: not found".
    backend = SwarmBackend.__new__(SwarmBackend)
    backend.api, backend._nodes, backend._task_services = _PrunedTaskHistory(), {}, {}
    listed = task()
    listed.pop("NodeID", None)
    (instance,) = backend._task_instances({"ID": "service-green", "Spec": SERVICE_SPEC}, [listed])
    assert backend._service_of(instance) == "service-green"
