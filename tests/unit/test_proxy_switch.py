# -*- coding: utf-8 -*-
"""The proxy step's decisions: what a switch checks before it routes, in which order it
activates configurations, what it records, and what it restores when the new worker fails.

The HAProxy node, Docker and Consul are in-memory stand-ins (FakeProxyNode below and
tests/unit/fakes.py) because these tests are about the order of decisions; the real proxy
switching real traffic is tests/integration/test_proxy.py and the benchmarks.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import flows as flows_module
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.flows import Flow, FlowSettings
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import (
    ProxyFlow,
    conflicting_rule,
    route_colors,
    routes_from_documents,
)
from fakes import FakeBackend, FakeConsulAPI, FakeConsulClient

COMPOSE = "services:\n  app:\n    image: %s\n    ports: ['8080']\n"


class FakeProxyNode:
    """The proxy container as the switch sees it: a running configuration, its backends, and how many
    servers the worker sees UP in each (``up``, by backend; missing means the color's instance count)."""

    def __init__(self, consul, name="dockerflow-proxy"):
        self.consul = consul
        self.name = name
        self.settings = ProxySettings()
        self.running = None  # the running haproxy.cfg, None while the container does not exist
        self.activated = []  # generations, in order
        self.up = {}
        self.lose_servers_after = None  # a number of activations: any later worker sees no server
        self.drifted = []  # what drift() reports of the running container

    def status(self):
        return "running" if self.running is not None else None

    def ensure_running(self, initial_config, check_mode=False):
        if self.running is not None:
            return None
        if not check_mode:
            self.running = initial_config
        return "created"

    def current_config(self):
        return self.running

    def drift(self):
        return list(self.drifted) if self.running is not None else []

    def backends(self):
        return set(re.findall(r"^backend (\S+)$", self.running or "", re.MULTILINE))

    def activate(self, config, generation):
        self.running = config
        self.activated.append(generation)

    def wait_servers_up(self, backend, timeout):
        if self.lose_servers_after is not None and len(self.activated) > self.lose_servers_after:
            raise FlowError("The new worker sees no server of %s UP." % backend)
        count = self.up.get(backend, 1)
        if not count:
            raise FlowError("The proxy sees no server of %s UP after %ds." % (backend, timeout))
        return count


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(flows_module, "DNS_QUIESCE_SECONDS", 0)


class Proxied:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.backend = FakeBackend()
        self.consul = FakeConsulAPI()
        self.client = FakeConsulClient(self.consul)
        self.node = FakeProxyNode(self.consul)

    def flow(self, service="books-app", image="dockerflow-test/app:1", check_mode=False):
        path = self.tmp_path / ("%s.yml" % service)
        path.write_text(COMPOSE % image, encoding="utf-8")
        settings = FlowSettings(service=service, project="books", target="app", compose_path=str(path), health_timeout=5)
        return Flow(self.backend, self.client, settings, check_mode=check_mode)

    def deploy(self, service="books-app", image="dockerflow-test/app:1"):
        return self.flow(service, image).deploy()

    def proxy(self, state="present", service="books-app", check_mode=False, switch_timeout=0, **options):
        flow = self.flow(service, check_mode=check_mode)
        result = ProxyFlow(flow, self.node, switch_timeout=switch_timeout).run(state, **options)
        result["steps"] = list(flow.steps)
        return result

    def document(self, service="books-app"):
        return self.consul.document(service)


@pytest.fixture
def proxied(tmp_path):
    return Proxied(tmp_path)


def test_a_first_switch_creates_the_proxy_stages_the_backend_then_routes_and_records(proxied):
    proxied.deploy()
    result = proxied.proxy(service_path=["/api/books"])
    assert result["changed"] and result["live_color"] == "blue" and result["servers_up"] == 1
    assert result["msg"] == "The proxy routes books-app to blue."
    assert "proxy dockerflow-proxy created with 0 route(s) from Consul" in result["steps"]
    # the backend is added (routing nothing) before a second configuration routes the path to it
    assert len(proxied.node.activated) == 2
    assert "use_backend be_books-app_blue" in proxied.node.running and "/api/books" in proxied.node.running
    document = proxied.document()
    assert document["live_color"] == "blue"
    assert document["routes"] == dict(result["routes"], proxy="dockerflow-proxy", max_servers=32)
    assert result["diff"]["before"] and result["diff"]["after"] == proxied.node.running


def test_the_same_switch_again_changes_nothing(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    again = proxied.proxy(service_path=["/api/books"])
    assert not again["changed"] and again["msg"] == "The proxy already routes books-app to blue."


def test_a_running_proxy_made_with_other_settings_is_reported_and_kept(proxied, tmp_path):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.node.drifted = ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
    flow = proxied.flow()
    running = proxied.node.running
    result = ProxyFlow(flow, proxied.node, switch_timeout=0).run("synced")
    assert not result["changed"] and proxied.node.running == running, "the proxy is not replaced"
    assert flow.warnings == [
        "Proxy dockerflow-proxy runs image haproxy:2.8, not haproxy:3.0 (proxy_image): only a new container applies "
        "that. Replacing it drops the connections it holds: in a quiet moment run flow_proxy state=absent, then "
        "state=synced (routes come back from Consul)."
    ]


def test_a_proxy_that_had_to_be_created_again_is_a_change_even_for_a_live_route(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.node.running = None  # the proxy container was removed
    again = proxied.proxy()  # the recorded paths are used
    assert again["changed"] and "already routes" in again["msg"]
    assert "/api/books" in proxied.node.running


def test_switching_to_the_next_release_records_the_previous_live_color(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    result = proxied.proxy()
    assert result["msg"] == "The proxy routes books-app to green (was blue)." and result["previous_color"] == "blue"
    assert proxied.document()["live_color"] == "green"
    # both colors already had backends: one reload, no staging
    assert len(proxied.node.activated) == 3


def test_check_mode_predicts_the_switch_and_activates_nothing(proxied):
    proxied.deploy()
    result = proxied.proxy(check_mode=True, service_path=["/api/books"])
    assert result["changed"] and result["msg"] == "Would route books-app to blue."
    assert proxied.node.running is None and proxied.node.activated == []
    assert proxied.document()["live_color"] is None


def test_no_passing_instance_in_consul_means_no_switch(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    for entry in proxied.consul.services.values():
        if "green" in entry["Tags"]:
            entry["Status"] = "critical"
    with pytest.raises(FlowError, match=r"No instance of books-app \(green\) passes .* Live color blue keeps serving\."):
        proxied.proxy()
    assert proxied.document()["live_color"] == "blue"


def test_a_target_the_proxy_sees_no_server_of_is_refused(proxied):
    proxied.deploy()
    proxied.node.up["be_books-app_blue"] = 0
    with pytest.raises(FlowError, match=r"sees no server of be_books-app_blue UP after 0s\. Not switching\.$"):
        proxied.proxy(service_path=["/api/books"])
    assert proxied.document()["live_color"] is None and proxied.document()["routes"] == {}


def test_a_new_worker_that_loses_the_servers_gets_the_previous_configuration_back(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    before = proxied.node.running
    proxied.deploy(image="dockerflow-test/app:2")
    proxied.node.lose_servers_after = len(proxied.node.activated)
    with pytest.raises(FlowError, match=r"The previous configuration was restored\.$"):
        proxied.proxy()
    assert proxied.node.running == before and proxied.document()["live_color"] == "blue"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"state": "gone"}, "state='gone' is not valid: use one of present, absent, synced."),
        ({"path_type": "glob", "service_path": ["/x"]}, "path_type='glob' is not valid"),
        ({}, "service_path or service_domain is required to route books-app"),
        ({"service_path": ["/x"], "color": "green"}, "Service books-app has no green release (it has: blue)."),
    ],
)
def test_a_switch_refuses_what_it_cannot_route(proxied, options, message):
    proxied.deploy()
    with pytest.raises(FlowError, match=re.escape(message)):
        proxied.proxy(**options)


def test_an_undeployed_service_and_a_path_another_service_owns_are_refused(proxied):
    with pytest.raises(FlowError, match=r"^Service books-app has no release to route; deploy it first\.$"):
        proxied.proxy(service_path=["/api"])
    proxied.deploy()
    proxied.proxy(service_path=["/api"])
    proxied.deploy(service="shop-app")
    with pytest.raises(FlowError, match="service_path /api is already routed to service books-app by proxy dockerflow-proxy"):
        proxied.proxy(service="shop-app", service_path=["/api"])


def test_absent_removes_the_routes_and_keeps_the_others(proxied):
    proxied.deploy()
    proxied.deploy(service="shop-app")
    proxied.proxy(service_path=["/books"])
    proxied.proxy(service="shop-app", service_path=["/shop"])
    removed = proxied.proxy(state="absent")
    assert removed["changed"] and removed["config_changed"] and removed["routes"] == {}
    assert "/books" not in proxied.node.running and "/shop" in proxied.node.running
    assert proxied.document()["routes"] == {}
    again = proxied.proxy(state="absent")
    assert not again["changed"] and again["msg"] == "books-app has no route."


def test_synced_recreates_a_missing_proxy_with_every_recorded_route(proxied):
    proxied.deploy()
    proxied.deploy(service="shop-app")
    proxied.proxy(service_path=["/books"])
    proxied.proxy(service="shop-app", service_path=["/shop"])
    proxied.node.running = None
    synced = proxied.proxy(state="synced")
    assert synced["changed"] and synced["proxy_outcome"] == "created"
    assert synced["msg"] == "Proxy dockerflow-proxy serves the 2 route(s) recorded in Consul."
    assert "/books" in proxied.node.running and "/shop" in proxied.node.running
    assert not proxied.proxy(state="synced")["changed"]


def test_a_color_with_more_instances_than_slots_is_not_switched_to_and_the_slots_are_recorded(proxied):
    # Hole 7 of issue 10: 32 slots per color, silently; now proxy_max_servers, recorded in the route.
    flow = proxied.flow()
    flow.settings.scale = "3"
    flow.deploy()
    proxied.node.settings = ProxySettings(max_servers=2)
    with pytest.raises(FlowError) as caught:
        proxied.proxy(service_path=["/api/books"])
    assert caught.value.msg == ("books-app (blue) runs 3 instances, more than proxy_max_servers=2 (servers of one color "
                                "the proxy routes to): raise proxy_max_servers, or scale it down; not switching.")
    assert proxied.node.activated == [] and proxied.document()["routes"] == {}
    proxied.node.settings = ProxySettings(max_servers=4)
    routed = proxied.proxy(service_path=["/api/books"])
    assert routed["live_color"] == "blue" and proxied.document()["routes"]["max_servers"] == 4
    assert "server-template b 1-4 _books-app._blue.service.consul" in proxied.node.running


def test_another_service_routed_with_other_slots_warns_and_routing_again_records_them(proxied):
    flow = proxied.flow()
    flow.settings.scale = "3"
    flow.deploy()
    proxied.deploy(service="shop-app")
    proxied.node.settings = ProxySettings(max_servers=4)
    proxied.proxy(service_path=["/books"])
    proxied.node.settings = ProxySettings(max_servers=2)
    shop = proxied.flow("shop-app")
    ProxyFlow(shop, proxied.node, switch_timeout=0).run("present", service_path=["/shop"])
    assert shop.warnings == ["books-app (blue) runs 3 instances, more than the 2 the proxy routes to of one color "
                             "(proxy_max_servers): 1 get no request."]
    synced = proxied.flow()
    ProxyFlow(synced, proxied.node, switch_timeout=0).run("synced")
    assert synced.warnings == shop.warnings
    # The proxy renders 8 slots for every service since shop-app's switch; books-app recorded 4: routing
    # it again changes no configuration but records the 8 its deploys and scales may use.
    proxied.node.settings = ProxySettings(max_servers=8)
    proxied.proxy(service="shop-app")
    again = proxied.proxy()
    assert again["changed"] and proxied.document()["routes"]["max_servers"] == 8
    assert not proxied.proxy()["changed"]


def test_routes_belong_to_their_proxy_and_both_colors_get_backends():
    documents = {
        "a": {"routes": {"paths": ["/a"], "color": "blue", "proxy": "internal"}, "colors": {"blue": {}}},
        "b": {"routes": {"paths": ["/b"], "color": "plain"}, "colors": {"plain": {}}},
        "c": {"routes": {}, "colors": {"blue": {}}},
    }
    assert [r.service for r in routes_from_documents(documents, "internal")] == ["a"]
    assert [r.service for r in routes_from_documents(documents, "dockerflow-proxy")] == ["b"]
    assert routes_from_documents(documents, "internal", skip="a") == []
    assert route_colors(documents["a"]) == ("blue", "green") and route_colors(documents["b"]) == ("plain",)


def test_conflicts_are_the_same_host_path_and_match_type():
    route = Route("new", "blue", paths=("/x", "/y"))
    assert conflicting_rule(route, [Route("old", "blue", paths=("/y",))]) == ("old", "/y")
    assert conflicting_rule(route, [Route("old", "blue", paths=("/y",), path_type="exact")]) is None
    assert conflicting_rule(route, [Route("old", "blue", paths=("/y",), domain="shop.example")]) is None
    assert conflicting_rule(Route("new", "blue", domain="d.example"), [Route("old", "blue", domain="d.example")]) == (
        "old", None)
