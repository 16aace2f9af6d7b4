# -*- coding: utf-8 -*-
"""Consul agent registrations: the check each instance gets, and the Registrar's bookkeeping.

The Registrar tests use a recording stand-in for ConsulClient because they
target how registrations are named and how check statuses are combined; a
real Consul agent is used in tests/integration.
"""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.registration import (
    CHECK_INTERVAL,
    CHECK_TIMEOUT,
    META_CHECK_HTTP,
    META_COLOR,
    META_CONTAINER,
    META_PORT,
    META_RELEASE,
    META_SERVICE,
    Registrar,
    Registration,
    service_id_for,
)


def registration(address="10.0.0.5", port=32768, check_http_path=None):
    return Registration(
        service="books-app", service_id="dockerflow-books-app-blue-1", address=address, port=port, color="blue",
        release=3, container="books-app-blue-1", check_http_path=check_http_path,
    )


@pytest.mark.parametrize(
    "address, expected",
    [("10.0.0.5", "10.0.0.5:32768"), ("host.example.com", "host.example.com:32768"), ("::1", "[::1]:32768"),
     ("2001:db8::5", "[2001:db8::5]:32768")],
)
def test_tcp_check(address, expected):
    assert registration(address).check() == {
        "TCP": expected, "Interval": CHECK_INTERVAL, "Timeout": CHECK_TIMEOUT, "Status": "passing",
    }


@pytest.mark.parametrize(
    "address, expected",
    [("10.0.0.5", "http://10.0.0.5:32768/health"), ("2001:db8::5", "http://[2001:db8::5]:32768/health")],
)
def test_http_check(address, expected):
    check = registration(address, check_http_path="/health").check()
    assert check == {"HTTP": expected, "Interval": CHECK_INTERVAL, "Timeout": CHECK_TIMEOUT, "Status": "passing"}
    assert "TCP" not in check


def test_http_check_keeps_the_query():
    assert registration(check_http_path="/health?deep=1").check()["HTTP"] == "http://10.0.0.5:32768/health?deep=1"


def test_empty_http_path_means_tcp():
    assert "TCP" in registration(check_http_path="").check()


def test_check_values_are_go_durations():
    assert CHECK_INTERVAL.endswith("s") and CHECK_TIMEOUT.endswith("s")


def test_service_id_for():
    assert service_id_for("books-app-blue-1") == "dockerflow-books-app-blue-1"


# --- Registrar with a recording client -------------------------------------------------------


class _Recorder:
    def __init__(self, name, log, result=None):
        self.name, self.log, self.result = name, log, result

    def __call__(self, *args, **kwargs):
        self.log.append((self.name, args, kwargs))
        return self.result


class FakeConsulClient:
    """Records calls made through ``client.call(what, fn, ...)`` on ``client.api``."""

    def __init__(self, services=None, health_entries=None):
        self.log = []
        self.whats = []

        class _Ns:
            pass

        api = _Ns()
        api.agent = _Ns()
        api.agent.service = _Ns()
        api.agent.service.register = _Recorder("register", self.log, True)
        api.agent.service.deregister = _Recorder("deregister", self.log, True)
        api.agent.services = _Recorder("services", self.log, services or {})
        api.health = _Ns()
        api.health.service = _Recorder("health", self.log, (7, health_entries))
        self.api = api

    def call(self, what, function, *args, **kwargs):
        self.whats.append(what)
        return function(*args, **kwargs)


def test_register_one_name():
    client = FakeConsulClient()
    Registrar(client).register(registration(check_http_path="/health"))
    assert client.log == [
        (
            "register",
            ("books-app",),
            {
                "service_id": "dockerflow-books-app-blue-1",
                "address": "10.0.0.5",
                "port": 32768,
                "tags": ["blue", "release-3", "dockerflow"],
                "meta": {META_SERVICE: "books-app", META_COLOR: "blue", META_RELEASE: "3", META_CONTAINER: "books-app-blue-1",
                         META_CHECK_HTTP: "/health"},
                "check": {
                    "HTTP": "http://10.0.0.5:32768/health", "Interval": CHECK_INTERVAL, "Timeout": CHECK_TIMEOUT,
                    "Status": "passing",
                },
            },
        )
    ]
    assert client.whats == ["registering dockerflow-books-app-blue-1"]


def test_the_meta_records_the_container_port_and_check_path_a_registrator_repairs_with():
    meta = Registration(
        service="books-app", service_id="dockerflow-books-app-blue-1", address="10.0.0.5", port=32768, color="blue",
        release=3, container="books-app-blue-1", check_http_path="/health", container_port="8080/tcp",
    ).meta()
    assert (meta[META_PORT], meta[META_CHECK_HTTP]) == ("8080/tcp", "/health")
    assert META_PORT not in registration().meta() and META_CHECK_HTTP not in registration().meta()


def test_register_legacy_names():
    client = FakeConsulClient()
    Registrar(client, legacy_names=True).register(registration())
    assert [(args[0], kwargs["service_id"]) for _name, args, kwargs in client.log] == [
        ("books-app", "dockerflow-books-app-blue-1"),
        ("books-app-blue", "dockerflow-books-app-blue-1-legacy"),
    ]


AGENT_SERVICES = {
    "dockerflow-books-app-blue-1": {"Meta": {META_SERVICE: "books-app"}},
    "dockerflow-books-app-blue-1-legacy": {"Meta": {META_SERVICE: "books-app"}},
    "dockerflow-other-green-1": {"Meta": {META_SERVICE: "other"}},
    "consul": {"Meta": {}},
    "registrator-thing": {"Meta": None},
}


def test_registered_ids_only_lists_ours():
    registrar = Registrar(FakeConsulClient(services=AGENT_SERVICES))
    assert registrar.registered_ids() == {
        "dockerflow-books-app-blue-1", "dockerflow-books-app-blue-1-legacy", "dockerflow-other-green-1"
    }
    assert registrar.registered_ids("other") == {"dockerflow-other-green-1"}


def test_deregister_removes_the_legacy_twin():
    client = FakeConsulClient(services=AGENT_SERVICES)
    Registrar(client).deregister("dockerflow-books-app-blue-1")
    assert [(name, args) for name, args, _kwargs in client.log if name == "deregister"] == [
        ("deregister", ("dockerflow-books-app-blue-1",)),
        ("deregister", ("dockerflow-books-app-blue-1-legacy",)),
    ]


def test_deregister_skips_what_is_not_registered():
    client = FakeConsulClient(services=AGENT_SERVICES)
    Registrar(client).deregister("dockerflow-other-green-1")
    assert [args for name, args, _kwargs in client.log if name == "deregister"] == [("dockerflow-other-green-1",)]


def _entry(service_id, *statuses):
    checks = [{"CheckID": "serfHealth", "Status": "critical", "ServiceID": ""}]  # node check: ignored
    checks += [{"CheckID": "c%d" % i, "Status": status, "ServiceID": service_id} for i, status in enumerate(statuses)]
    return {"Service": {"ID": service_id}, "Checks": checks}


def test_health_takes_the_worst_service_check():
    entries = [
        _entry("a", "passing"),
        _entry("b", "passing", "warning"),
        _entry("c", "warning", "critical", "passing"),
        _entry("d", "critical", "warning"),
        _entry("e"),
    ]
    assert Registrar(FakeConsulClient(health_entries=entries)).health("books-app") == {
        "a": "passing", "b": "warning", "c": "critical", "d": "critical", "e": "passing",
    }


def test_health_of_an_unknown_service():
    assert Registrar(FakeConsulClient(health_entries=None)).health("nothing") == {}


class _ChangingHealth:
    """Consul's health endpoint answering a blocking query: the next answer comes when the list changed."""

    def __init__(self, answers):
        self.answers = list(answers)  # (index, service IDs)
        self.asked = []

    def __call__(self, service, **kwargs):
        self.asked.append(kwargs)
        index, ids = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return index, [{"Service": {"ID": service_id}} for service_id in ids]


def test_waiting_for_instances_uses_blocking_queries_not_polls():
    client = FakeConsulClient()
    client.api.health.service = health = _ChangingHealth([("10", []), ("12", ["a"]), ("15", ["a", "b"])])
    ids = Registrar(client).watch_passing("books-app", lambda found: {"a", "b"} <= found, 30, tag="green")
    assert ids == {"a", "b"}
    assert health.asked == [
        {"passing": True, "tag": "green"},
        {"passing": True, "tag": "green", "index": "10", "wait": "5s"},
        {"passing": True, "tag": "green", "index": "12", "wait": "5s"},
    ], "each query waits on the index of the answer before"


def test_a_wait_that_runs_out_returns_what_passes_then():
    client = FakeConsulClient()
    client.api.health.service = _ChangingHealth([("10", ["a"])])
    assert Registrar(client).watch_passing("books-app", lambda found: not found, 0.2) == {"a"}
