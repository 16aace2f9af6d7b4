# -*- coding: utf-8 -*-
"""The registrator: container inspect data -> Consul registrations (registrator's SERVICE_*
conventions), and the daemon's reconciliation against recording stand-ins for the engine
and the agent. The real engine and agent are used in tests/integration/test_registrator.py.
"""

from __future__ import annotations

import ast
import os
import threading
import time

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import dockerflow_registrator as reg
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import (
    LABEL_CHECK_HTTP,
    LABEL_COLOR,
    LABEL_LEGACY_NAMES,
    LABEL_REGISTER_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import (
    META_CHECK_HTTP,
    META_COLOR,
    META_PORT,
    META_RELEASE,
    META_SERVICE,
    Registration,
)

SETTINGS = reg.Settings(node="node1", ip="10.0.0.5")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def binding(port, host_ip="0.0.0.0"):
    return {"HostIp": host_ip, "HostPort": str(port)}


def container(name="web", image="team/books-ms:1.2", env=None, labels=None, ports=None, running=True, paused=False,
              cid=None):
    if ports is None:
        ports = {"8080/tcp": [binding(32768), binding(32768, "::")]}
    return {
        "Id": cid or ("%064x" % abs(hash(name)))[:64],
        "Name": "/" + name,
        "Config": {"Image": image, "Env": list(env or []), "Labels": dict(labels or {})},
        "State": {"Running": running, "Paused": paused},
        "NetworkSettings": {"Ports": ports},
    }


def entries(inspect, settings=SETTINGS):
    return reg.map_container(inspect, settings).entries


# -- names, IDs, addresses -----------------------------------------------------------------


def test_one_published_port_registers_under_the_image_basename():
    data = container()
    [entry] = entries(data)
    assert entry.name == "books-ms"
    assert entry.service_id == "node1:web:8080"
    assert (entry.address, entry.port) == ("10.0.0.5", 32768)
    assert entry.tags == []
    assert entry.check is None
    payload = entry.payload()
    assert payload["Meta"][reg.META_REGISTRATOR] == "node1"
    assert payload["Meta"][reg.META_CONTAINER] == "web"
    assert payload["Meta"][reg.META_CONTAINER_ID] == data["Id"]
    assert payload["Meta"][reg.META_SPEC] == entry.fingerprint()
    assert "Check" not in payload


@pytest.mark.parametrize(
    "image, expected",
    [("redis", "redis"), ("redis:7", "redis"), ("registry:5000/team/books-ms:1.2", "books-ms"),
     ("team/app@sha256:" + "a" * 64, "app"), ("localhost:5000/app", "app"), ("", "container")],
)
def test_image_basename(image, expected):
    assert reg.image_basename(image) == expected


def test_a_port_published_on_one_address_is_registered_with_that_address():
    [entry] = entries(container(ports={"8080/tcp": [binding(41000, "127.0.0.1")]}))
    assert (entry.address, entry.port) == ("127.0.0.1", 41000)


def test_a_port_published_on_all_ipv6_addresses_gets_the_ip_setting():
    [entry] = entries(container(ports={"8080/tcp": [binding(41000, "::")]}))
    assert entry.address == "10.0.0.5"


def test_exposed_but_unpublished_ports_are_not_registered():
    mapping = reg.map_container(container(ports={"8080/tcp": None, "9090/tcp": []}), SETTINGS)
    assert mapping.entries == [] and mapping.skipped == "publishes no port"


def test_several_ports_get_the_port_appended_to_the_name():
    ports = {"9090/tcp": [binding(32001)], "8080/tcp": [binding(32000)]}
    result = entries(container(ports=ports))
    assert [(e.name, e.service_id, e.port) for e in result] == [
        ("books-ms-8080", "node1:web:8080", 32000),
        ("books-ms-9090", "node1:web:9090", 32001),
    ]


def test_service_name_and_per_port_names():
    ports = {"8080/tcp": [binding(32000)], "9090/tcp": [binding(32001)]}
    result = entries(container(env=["SERVICE_NAME=books", "SERVICE_9090_NAME=books-metrics"], ports=ports))
    assert [e.name for e in result] == ["books-8080", "books-metrics"]
    [single] = entries(container(env=["SERVICE_NAME=books"]))
    assert single.name == "books"


def test_labels_override_the_environment():
    [entry] = entries(container(env=["SERVICE_NAME=from-env", "SERVICE_TAGS=a"], labels={"SERVICE_NAME": "from-label"}))
    assert entry.name == "from-label"
    assert entry.tags == ["a"]


def test_per_port_attributes_win_over_general_ones_whatever_their_order():
    data = container(labels={"SERVICE_8080_TAGS": "port", "SERVICE_TAGS": "general"})
    assert entries(data)[0].tags == ["port"]


def test_tags_from_settings_and_service_tags_without_duplicates_or_blanks():
    settings = reg.Settings(node="node1", ip="10.0.0.5", tags=("prod", " "))
    [entry] = entries(container(env=["SERVICE_TAGS=web, prod,,v1 "]), settings)
    assert entry.tags == ["prod", "web", "v1"]


def test_udp_ports_get_a_suffixed_id_and_a_tag():
    ports = {"53/udp": [binding(32053)], "53/tcp": [binding(32054)]}
    result = entries(container(name="dns", image="coredns", ports=ports))
    assert [(e.service_id, e.name, e.tags) for e in result] == [
        ("node1:dns:53", "coredns-53", []),
        ("node1:dns:53:udp", "coredns-53", ["udp"]),
    ]


def test_service_id_is_taken_and_made_unique_per_port():
    [entry] = entries(container(env=["SERVICE_ID=books-1"]))
    assert entry.service_id == "books-1"
    ports = {"8080/tcp": [binding(32000)], "9090/tcp": [binding(32001)]}
    result = entries(container(env=["SERVICE_ID=books-1", "SERVICE_9090_ID=metrics-1"], ports=ports))
    assert [e.service_id for e in result] == ["books-1:8080", "metrics-1"]


# -- what is skipped -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_service_ignore_skips_the_container(value):
    mapping = reg.map_container(container(env=["SERVICE_IGNORE=%s" % value]), SETTINGS)
    assert mapping.entries == [] and "SERVICE_IGNORE" in mapping.skipped


def test_service_ignore_false_or_empty_does_not_skip():
    assert entries(container(env=["SERVICE_IGNORE=false"]))
    assert entries(container(labels={"SERVICE_IGNORE": ""}))


def test_per_port_ignore_skips_only_that_port_and_does_not_change_the_names():
    ports = {"8080/tcp": [binding(32000)], "9090/tcp": [binding(32001)]}
    result = entries(container(labels={"SERVICE_9090_IGNORE": "true"}, ports=ports))
    assert [e.name for e in result] == ["books-ms-8080"]


def test_containers_labelled_by_the_flow_modules_are_skipped():
    assert LABEL_SERVICE == "dockerflow.service"
    mapping = reg.map_container(container(labels={LABEL_SERVICE: "books-ms", "SERVICE_NAME": "x"}), SETTINGS)
    assert mapping.entries == [] and LABEL_SERVICE in mapping.skipped


@pytest.mark.parametrize("running, paused", [(False, False), (True, True)])
def test_stopped_and_paused_containers_have_no_registrations(running, paused):
    assert entries(container(running=running, paused=paused)) == []


def test_explicit_registers_only_named_ports():
    settings = reg.Settings(node="node1", ip="10.0.0.5", explicit=True)
    ports = {"8080/tcp": [binding(32000)], "9090/tcp": [binding(32001)]}
    assert entries(container(ports=ports), settings) == []
    result = entries(container(env=["SERVICE_8080_NAME=books"], ports=ports), settings)
    assert [e.name for e in result] == ["books"]


@pytest.mark.parametrize(
    "require, labels, wanted",
    [("team", {"team": "x"}, True), ("team", {}, False), ("team=a", {"team": "a"}, True),
     ("team=a", {"team": "b"}, False), (None, {}, True)],
)
def test_require_label(require, labels, wanted):
    settings = reg.Settings(node="node1", ip="10.0.0.5", require_label=require)
    assert bool(entries(container(labels=labels), settings)) is wanted


# -- checks ----------------------------------------------------------------------------------


def check_of(env, ports=None):
    mapping = reg.map_container(container(env=env, ports=ports), SETTINGS)
    return mapping.entries[0].check, mapping.warnings


def test_http_check_on_the_registered_address_with_the_default_interval():
    check, warnings = check_of(["SERVICE_CHECK_HTTP=health"])
    assert check == {"HTTP": "http://10.0.0.5:32768/health", "Interval": "10s"}
    assert warnings == []


def test_check_interval_timeout_initial_status_and_deregister_after():
    check, _warnings = check_of(["SERVICE_CHECK_HTTP=/health", "SERVICE_CHECK_INTERVAL=2s", "SERVICE_CHECK_TIMEOUT=1500ms",
                                 "SERVICE_CHECK_INITIAL_STATUS=passing", "SERVICE_CHECK_DEREGISTER_AFTER=5m"])
    assert check == {"HTTP": "http://10.0.0.5:32768/health", "Interval": "2s", "Timeout": "1500ms",
                     "Status": "passing", "DeregisterCriticalServiceAfter": "5m"}


def test_https_check_with_tls_skip_verify():
    check, _warnings = check_of(["SERVICE_CHECK_HTTPS=/status", "SERVICE_CHECK_TLS_SKIP_VERIFY=true"])
    assert check["HTTP"] == "https://10.0.0.5:32768/status" and check["TLSSkipVerify"] is True


def test_tcp_check_and_ipv6_addresses_in_brackets():
    check, _warnings = check_of(["SERVICE_CHECK_TCP=true"], ports={"8080/tcp": [binding(32768, "::1")]})
    assert check == {"TCP": "[::1]:32768", "Interval": "10s"}
    check, _warnings = check_of(["SERVICE_CHECK_HTTP=/h"], ports={"8080/tcp": [binding(32768, "fd00::5")]})
    assert check["HTTP"] == "http://[fd00::5]:32768/h"


def test_ttl_check_has_no_interval():
    check, _warnings = check_of(["SERVICE_CHECK_TTL=30s"])
    assert check == {"TTL": "30s"}


def test_no_check_unless_asked_and_tcp_false_is_no_check():
    assert check_of([])[0] is None
    assert check_of(["SERVICE_CHECK_TCP=false"])[0] is None


@pytest.mark.parametrize(
    "env, expected_check, warning",
    [
        (["SERVICE_CHECK_HTTP=/h", "SERVICE_CHECK_INTERVAL=soon"], {"HTTP": "http://10.0.0.5:32768/h", "Interval": "10s"},
         "SERVICE_CHECK_INTERVAL"),
        (["SERVICE_CHECK_HTTP=/h", "SERVICE_CHECK_TIMEOUT=5"], {"HTTP": "http://10.0.0.5:32768/h", "Interval": "10s"},
         "SERVICE_CHECK_TIMEOUT"),
        (["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_INITIAL_STATUS=green"], {"TCP": "10.0.0.5:32768", "Interval": "10s"},
         "SERVICE_CHECK_INITIAL_STATUS"),
        (["SERVICE_CHECK_TTL=forever"], None, "SERVICE_CHECK_TTL"),
        (["SERVICE_CHECK_SCRIPT=curl x"], None, "SERVICE_CHECK_SCRIPT"),
    ],
)
def test_bad_check_attributes_warn_and_never_reach_consul(env, expected_check, warning):
    check, warnings = check_of(env)
    assert check == expected_check
    assert len(warnings) == 1 and warning in warnings[0]


def test_per_port_checks():
    ports = {"8080/tcp": [binding(32000)], "9090/tcp": [binding(32001)]}
    env = ["SERVICE_8080_CHECK_HTTP=/health", "SERVICE_9090_CHECK_TCP=true"]
    mapping = reg.map_container(container(env=env, ports=ports), SETTINGS)
    assert [sorted(e.check) for e in mapping.entries] == [["HTTP", "Interval"], ["Interval", "TCP"]]


# -- settings and fingerprints --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [({"ip": "not an ip"}, "ip="), ({"ip": ""}, "ip="), ({"node": "a b"}, "node="), ({"node": ""}, "node="),
     ({"check_interval": "ten"}, "interval")],
)
def test_bad_settings_are_refused(kwargs, message):
    values = dict(node="node1", ip="10.0.0.5")
    values.update(kwargs)
    with pytest.raises(FlowError, match=message):
        reg.Settings(**values)


def test_host_names_are_accepted_as_ip():
    assert reg.Settings(node="n", ip="docker1.example.com").ip == "docker1.example.com"


def test_fingerprint_follows_every_field():
    [entry] = entries(container())
    [same] = entries(container())
    assert entry.fingerprint() == same.fingerprint()
    for changed in (container(env=["SERVICE_TAGS=x"]), container(env=["SERVICE_CHECK_TCP=1"]),
                    container(ports={"8080/tcp": [binding(32769)]}), container(cid="f" * 64)):
        assert entries(changed)[0].fingerprint() != entry.fingerprint()


port_numbers = st.integers(min_value=1, max_value=65535)


@given(st.dictionaries(st.tuples(port_numbers, st.sampled_from(["tcp", "udp"])), port_numbers, min_size=1, max_size=8))
def test_ids_are_unique_and_every_published_port_is_registered_once(published):
    ports = {"%d/%s" % key: [binding(host), binding(host, "::")] for key, host in published.items()}
    result = entries(container(ports=ports))
    assert len(result) == len(published)
    assert len({e.service_id for e in result}) == len(result)
    assert sorted(e.port for e in result) == sorted(published.values())
    if len(published) > 1:
        assert all(e.name.startswith("books-ms-") for e in result)


# -- the daemon against stand-ins ------------------------------------------------------------


class FakeDocker:
    url = "unix:///fake.sock"
    api_version = "1.99"

    def __init__(self, *containers):
        self.containers = {c["Id"]: c for c in containers}

    def running_container_ids(self):
        return [cid for cid, c in self.containers.items() if c["State"]["Running"]]

    def inspect(self, container_id):
        return self.containers.get(container_id)


class FakeConsul:
    address = "http://fake:8500"

    def __init__(self, services=None):
        self.services_ = dict(services or {})
        self.calls = []
        self.fail = False

    def services(self):
        if self.fail:
            raise FlowError("Cannot reach Consul at fake.")
        return {sid: dict(entry, ID=sid) for sid, entry in self.services_.items()}

    def register(self, payload):
        self.calls.append(("register", payload["ID"]))
        self.services_[payload["ID"]] = {"Service": payload["Name"], "Meta": payload["Meta"], "Port": payload["Port"]}

    def deregister(self, service_id):
        self.calls.append(("deregister", service_id))
        del self.services_[service_id]


def daemon(docker, consul, settings=SETTINGS):
    logged = []
    return reg.Registrator(docker, consul, settings, resync_interval=30, logger=logged.append), logged


def foreign_entries():
    return {
        "dockerflow-books-blue-1": {"Service": "books", "Meta": {"dockerflow-service": "books"}},
        "node2:web:8080": {"Service": "x", "Meta": {reg.META_REGISTRATOR: "node2"}},
        "consul": {"Service": "consul", "Meta": {}},
    }


def test_resync_registers_running_containers_and_removes_only_its_own_dangling_entries():
    web = container(name="web")
    stopped = container(name="old", running=False)
    dangling = {"node1:gone:8080": {"Service": "gone", "Meta": {reg.META_REGISTRATOR: "node1"}}}
    consul = FakeConsul(dict(foreign_entries(), **dangling))
    registrator, logged = daemon(FakeDocker(web, stopped), consul)
    summary = registrator.resync()
    assert consul.calls == [("register", "node1:web:8080"), ("deregister", "node1:gone:8080")]
    assert set(consul.services_) == set(foreign_entries()) | {"node1:web:8080"}
    assert summary["registered"] == 1 and summary["removed"] == 1
    assert any("deregistered node1:gone:8080 (dangling)" in line for line in logged)


def test_resync_does_not_resend_unchanged_registrations():
    consul = FakeConsul()
    registrator, _logged = daemon(FakeDocker(container()), consul)
    registrator.resync()
    registrator.resync()
    assert consul.calls == [("register", "node1:web:8080")]


def test_resync_reregisters_a_changed_registration():
    docker = FakeDocker(container(cid="a" * 64))
    consul = FakeConsul()
    registrator, _logged = daemon(docker, consul)
    registrator.resync()
    docker.containers["a" * 64]["Config"]["Labels"]["SERVICE_TAGS"] = "v2"
    registrator.resync()
    assert consul.calls == [("register", "node1:web:8080")] * 2


def test_a_stopped_container_is_deregistered_by_its_event():
    web = container(cid="b" * 64)
    docker = FakeDocker(web)
    consul = FakeConsul(foreign_entries())
    registrator, logged = daemon(docker, consul)
    registrator.handle_event({"Type": "container", "Action": "start", "Actor": {"ID": "b" * 64},
                              "timeNano": int(time.time() * 1e9)})
    assert "node1:web:8080" in consul.services_
    web["State"]["Running"] = False
    registrator.handle_event({"Type": "container", "Action": "die", "Actor": {"ID": "b" * 64}})
    assert "node1:web:8080" not in consul.services_
    del docker.containers["b" * 64]
    registrator.handle_event({"Type": "container", "Action": "destroy", "Actor": {"ID": "b" * 64}})
    assert set(consul.services_) == set(foreign_entries())
    assert any("handled" in line and "after the event" in line for line in logged)


def test_events_of_an_old_container_leave_its_namesake_alone():
    old, new = container(name="web", cid="1" * 64), container(name="web", cid="2" * 64)
    docker = FakeDocker(new)
    consul = FakeConsul()
    registrator, _logged = daemon(docker, consul)
    registrator.resync()
    registrator.handle_event({"Action": "destroy", "Actor": {"ID": old["Id"]}})
    assert consul.services_["node1:web:8080"]["Meta"][reg.META_CONTAINER_ID] == new["Id"]


def test_a_consul_failure_during_an_event_schedules_a_resync_soon():
    consul = FakeConsul()
    registrator, logged = daemon(FakeDocker(container(cid="c" * 64)), consul)
    registrator.next_resync = time.monotonic() + 30
    consul.fail = True
    registrator.handle_event({"Action": "start", "Actor": {"ID": "c" * 64}})
    assert registrator.next_resync <= time.monotonic() + 2
    assert any("resyncing soon" in line for line in logged)


class FakeStream:
    def __init__(self, events):
        self.events = events
        self.closed = threading.Event()

    def __iter__(self):
        yield from self.events
        self.closed.wait()

    def close(self):
        self.closed.set()


def test_run_resyncs_follows_events_and_stops_when_asked():
    web = container(cid="d" * 64)
    docker = FakeDocker()
    stream = FakeStream([])
    docker.events = lambda: stream
    consul = FakeConsul({"node1:gone:1": {"Meta": {reg.META_REGISTRATOR: "node1"}}})
    registrator, logged = daemon(docker, consul)
    stop = threading.Event()
    thread = threading.Thread(target=registrator.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not any(line.startswith("ready") for line in logged) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "node1:gone:1" not in consul.services_
        docker.containers[web["Id"]] = web
        registrator.queue.put((1, "event", {"Action": "start", "Actor": {"ID": web["Id"]}}))
        while "node1:web:8080" not in consul.services_ and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "node1:web:8080" in consul.services_
    finally:
        started = time.monotonic()
        stop.set()
        registrator.wake()
        thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 1
    assert stream.closed.is_set()
    assert logged[-1] == "stopped"


def test_run_reconnects_and_resyncs_when_the_event_stream_ends():
    streams = []

    def events():
        streams.append(FakeStream([]))
        if len(streams) == 1:
            streams[0].closed.set()  # the first stream ends at once
        return streams[-1]

    docker = FakeDocker()
    docker.events = events
    registrator, logged = daemon(docker, FakeConsul())
    stop = threading.Event()
    thread = threading.Thread(target=registrator.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while len(streams) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    registrator.wake()
    thread.join(5)
    assert len(streams) >= 2
    assert any("event stream ended" in line for line in logged)


# -- command line ------------------------------------------------------------------------------


def test_main_refuses_bad_arguments_with_exit_2(capsys):
    assert reg.main(["--ip", "bad ip"]) == 2
    assert "ip=" in capsys.readouterr().out
    assert reg.main(["--ip", "10.0.0.5", "--consul", "ftp://x"]) == 2
    with pytest.raises(SystemExit):
        reg.main(["--ip", "10.0.0.5", "--resync", "0"])


def test_consul_and_docker_addresses():
    assert reg.ConsulAgent("127.0.0.1:8500").base == "http://127.0.0.1:8500"
    assert reg.ConsulAgent("https://consul.example.com").base == "https://consul.example.com:443"
    assert reg.ConsulAgent("http://[::1]:8500").base == "http://[::1]:8500"
    with pytest.raises(FlowError):
        reg.ConsulAgent("http://bad host:8500")
    with pytest.raises(FlowError, match="no TLS"):
        reg.DockerAPI("ssh://docker@host")


# -- the role ships what the daemon imports ----------------------------------------------------


def collection_imports(path):
    found = set()
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible_collections.dockerflow.flow."):
            found.add(node.module.rsplit(".", 1)[-1] + ".py")
    return found


def test_the_role_copies_every_module_util_the_daemon_imports():
    utils = os.path.join(ROOT, "plugins", "module_utils")
    program = os.path.dirname(os.path.abspath(reg.__file__))
    needed, todo = set(), []
    for name in os.listdir(program):
        if name.endswith(".py"):
            todo.extend(collection_imports(os.path.join(program, name)))
    assert todo, "the daemon shares no module_utils with the flow any more: is the role's copy still needed?"
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(collection_imports(os.path.join(utils, name)))
    with open(os.path.join(ROOT, "roles", "registrator", "vars", "main.yml")) as handle:
        shipped = set(yaml.safe_load(handle)["__registrator_module_utils"])
    assert shipped == needed
    assert program == os.path.join(ROOT, "roles", "registrator", "files", "dockerflow_registrator")


def test_events_of_containers_that_cannot_be_ours_cost_no_lookup():
    docker, consul = FakeDocker(), FakeConsul()
    inspected = []
    docker.inspect = inspected.append
    settings = reg.Settings(node="node1", ip="10.0.0.5", require_label="team=a")
    registrator, _logged = daemon(docker, consul, settings)
    registrator.handle_event({"Action": "die", "Actor": {"ID": "1", "Attributes": {"dockerflow.service": "x", "team": "a"}}})
    registrator.handle_event({"Action": "start", "Actor": {"ID": "2", "Attributes": {"name": "web", "team": "b"}}})
    assert inspected == [] and consul.calls == []
    registrator.handle_event({"Action": "start", "Actor": {"ID": "3", "Attributes": {"name": "web", "team": "a"}}})
    registrator.handle_event({"Action": "start", "Actor": {"ID": "4"}})  # no attributes: look
    assert inspected == ["3", "4"]


def test_unexpected_errors_are_logged_with_where_they_happened():
    consul = FakeConsul()
    registrator, logged = daemon(FakeDocker(container(cid="e" * 64)), consul)

    def broken(_payload):
        raise KeyError("boom")

    consul.register = broken
    registrator.handle_event({"Action": "start", "Actor": {"ID": "e" * 64}})
    [line] = [line for line in logged if "KeyError" in line]
    assert "boom" in line and "broken" in line and "\n" not in line


# -- flow instances whose registration is the registrator's (Swarm tasks) ------------------------

TASK_NAME = "books-ms-app-blue.2.k3j4h5g6f7d8s9a0q1w2e3r4t"


def swarm_task(labels=None, ports=None, running=True):
    task_labels = {
        LABEL_SERVICE: "books-ms-app", LABEL_COLOR: "blue", LABEL_RELEASE: "7", LABEL_REGISTER_PORT: "8080/tcp",
        "com.docker.swarm.task.id": "k3j4h5g6f7d8s9a0q1w2e3r4t",
    }
    task_labels.update(labels or {})
    return container(name=TASK_NAME, image="dftest-registry:5000/dockerflow-test/app:1@sha256:" + "b" * 64,
                     labels=task_labels, ports=ports, running=running)


def test_a_swarm_task_is_registered_as_the_flow_registers_its_containers():
    data = swarm_task(labels={LABEL_CHECK_HTTP: "/health"})
    [entry] = entries(data)
    assert (entry.name, entry.service_id) == ("books-ms-app", "dockerflow-" + TASK_NAME)
    assert (entry.address, entry.port) == ("10.0.0.5", 32768)
    assert entry.tags == ["blue", "release-7", "dockerflow"]
    # no initial status: critical until the check passes, so neither the flow nor the proxy takes it early
    assert entry.check == {"Interval": "2s", "Timeout": "2s", "HTTP": "http://10.0.0.5:32768/health"}
    meta = entry.payload()["Meta"]
    assert meta[META_SERVICE] == "books-ms-app" and meta[META_COLOR] == "blue" and meta[META_RELEASE] == "7"
    assert meta[reg.META_CONTAINER] == TASK_NAME and meta[reg.META_REGISTRATOR] == "node1"
    flow_payload = Registration(
        service="books-ms-app", service_id="dockerflow-" + TASK_NAME, address="10.0.0.5", port=32768, color="blue",
        release=7, container=TASK_NAME, check_http_path="/health", initial_status=None,
    ).payloads()[0]
    assert {key: value for key, value in entry.payload().items() if key != "Meta"} == {
        key: value for key, value in flow_payload.items() if key != "Meta"
    }


def test_a_swarm_task_without_a_check_path_gets_a_tcp_check_and_legacy_names_on_request():
    result = entries(swarm_task(labels={LABEL_LEGACY_NAMES: "true"}))
    assert [(e.name, e.service_id) for e in result] == [
        ("books-ms-app", "dockerflow-" + TASK_NAME),
        ("books-ms-app-blue", "dockerflow-" + TASK_NAME + "-legacy"),
    ]
    assert result[0].check == {"Interval": "2s", "Timeout": "2s", "TCP": "10.0.0.5:32768"}


def test_a_swarm_task_registers_only_its_register_port_and_ignores_explicit_and_require_label():
    ports = {"8080/tcp": [binding(30001)], "9090/tcp": [binding(30002)]}
    settings = reg.Settings(node="node1", ip="10.0.0.5", explicit=True, require_label="team=a")
    [entry] = entries(swarm_task(ports=ports), settings)
    assert entry.port == 30001
    mapping = reg.map_container(swarm_task(ports={"9090/tcp": [binding(30002)]}), SETTINGS)
    assert mapping.entries == [] and mapping.skipped == "does not publish dockerflow.register-port=8080/tcp"
    assert entries(swarm_task(running=False)) == []


def test_events_of_swarm_tasks_are_followed_and_of_plain_flow_containers_only_their_start():
    docker, consul = FakeDocker(), FakeConsul()
    inspected = []
    docker.inspect = inspected.append
    registrator, _logged = daemon(docker, consul)
    registrator.handle_event({"Action": "die", "Actor": {"ID": "1", "Attributes": {LABEL_SERVICE: "x"}}})
    registrator.handle_event(
        {"Action": "die", "Actor": {"ID": "2", "Attributes": {LABEL_SERVICE: "x", LABEL_REGISTER_PORT: "8080/tcp"}}}
    )
    registrator.handle_event({"Action": "start", "Actor": {"ID": "3", "Attributes": {LABEL_SERVICE: "x"}}})
    assert inspected == ["2", "3"]


def test_a_dying_swarm_task_is_deregistered_and_the_flows_own_entries_stay():
    task = swarm_task()
    docker = FakeDocker(task)
    consul = FakeConsul(foreign_entries())
    registrator, _logged = daemon(docker, consul)
    registrator.resync()
    assert ("register", "dockerflow-" + TASK_NAME) in consul.calls
    task["State"]["Running"] = False
    registrator.handle_event({"Action": "die", "Actor": {"ID": task["Id"]}})
    assert consul.calls[-1] == ("deregister", "dockerflow-" + TASK_NAME)
    assert set(consul.services_) == set(foreign_entries())


# -- the flow's own entries of plain containers that started again on a new port ------------------------
FLOW_CONTAINER = "books-ms-app-blue-1"


def flow_container(port=32771, running=True):
    labels = {LABEL_SERVICE: "books-ms-app", LABEL_COLOR: "blue", LABEL_RELEASE: "3"}
    return container(name=FLOW_CONTAINER, labels=labels, ports={"8080/tcp": [binding(port, "127.0.0.1")]}, running=running)


def flow_entry(port=32768, **meta):
    """What the flow registered (registration.Registration), as the agent lists it."""
    return {"Service": "books-ms-app", "Address": "127.0.0.1", "Port": port, "Meta": dict({
        META_SERVICE: "books-ms-app", META_COLOR: "blue", META_RELEASE: "3", reg.META_CONTAINER: FLOW_CONTAINER,
        META_PORT: "8080/tcp", META_CHECK_HTTP: "/health"}, **meta)}


def test_the_flows_entry_follows_its_container_to_a_new_host_port():
    consul = FakeConsul({"dockerflow-" + FLOW_CONTAINER: flow_entry(32768)})
    registrator, logged = daemon(FakeDocker(flow_container(32771)), consul)
    [payload] = reg.flow_repairs(flow_container(32771), consul.services())
    assert (payload["ID"], payload["Name"], payload["Address"], payload["Port"]) == (
        "dockerflow-" + FLOW_CONTAINER, "books-ms-app", "127.0.0.1", 32771)
    # checked again from critical, on the new port; still the flow's entry (no registrator mark)
    assert payload["Check"] == {"Interval": "2s", "Timeout": "2s", "HTTP": "http://127.0.0.1:32771/health"}
    assert reg.META_REGISTRATOR not in payload["Meta"] and payload["Meta"][META_PORT] == "8080/tcp"
    assert registrator.resync()["repaired"] == 1
    assert consul.calls == [("register", "dockerflow-" + FLOW_CONTAINER)]
    assert any("repaired dockerflow-%s: port 32768 -> 32771" % FLOW_CONTAINER in line for line in logged), logged
    registrator.resync()
    assert len(consul.calls) == 1, "an entry on the right port is left alone"


def test_the_start_event_of_a_flow_container_repairs_its_entry_and_its_legacy_name():
    consul = FakeConsul({"dockerflow-" + FLOW_CONTAINER: flow_entry(32768),
                         "dockerflow-" + FLOW_CONTAINER + "-legacy": dict(flow_entry(32768), Service="books-ms-app-blue")})
    data = flow_container(32771)
    registrator, _logged = daemon(FakeDocker(data), consul)
    registrator.handle_event({"Action": "start", "Actor": {"ID": data["Id"], "Attributes": {LABEL_SERVICE: "books-ms-app"}}})
    assert consul.calls == [("register", "dockerflow-" + FLOW_CONTAINER),
                            ("register", "dockerflow-" + FLOW_CONTAINER + "-legacy")]
    assert consul.services_["dockerflow-" + FLOW_CONTAINER + "-legacy"]["Service"] == "books-ms-app-blue"


@pytest.mark.parametrize("case", ["same port", "stopped", "no container port recorded", "a registrator's entry",
                                  "another container's entry", "a swarm task"])
def test_what_is_not_repaired(case):
    data, entry = flow_container(32771), flow_entry(32768)
    if case == "same port":
        entry["Port"] = 32771
    elif case == "stopped":
        data = flow_container(32771, running=False)
    elif case == "no container port recorded":  # registered by an older collection: nothing says which port
        del entry["Meta"][META_PORT]
    elif case == "a registrator's entry":
        entry["Meta"][reg.META_REGISTRATOR] = "node1"
    elif case == "another container's entry":
        entry["Meta"][reg.META_CONTAINER] = "books-ms-app-blue-2"
    else:
        data["Config"]["Labels"][LABEL_REGISTER_PORT] = "8080/tcp"
    assert reg.flow_repairs(data, {"dockerflow-" + FLOW_CONTAINER: entry}) == []
