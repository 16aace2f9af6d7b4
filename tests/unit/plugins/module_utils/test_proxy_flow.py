# -*- coding: utf-8 -*-
"""The proxy step's decisions: what a switch checks before it routes, in which order it
activates configurations, what it records, and what it restores when the new worker fails.

The HAProxy node, Docker and Consul are in-memory stand-ins (FakeProxyNode below and
tests/unit/fakes.py) because these tests are about the order of decisions; the real proxy
switching real traffic is tests/integration/test_proxy.py and the benchmarks.
"""

from __future__ import annotations

import json
import re
import time
import types
from dataclasses import replace

import pytest
import requests

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_flow
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import (
    ProxySettings,
    Route,
    render,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import (
    LiveMap,
    body,
    config_generation,
    live_backend,
    map_text,
    trailer,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import (
    ADMIN_SOCKET,
    CANDIDATE_FILE,
    CONFIG_DIR,
    CONFIG_FILE,
    LIVE_MAP_FILE,
    PREVIOUS_FILE,
    RELOAD_SCRIPT,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow, proxy_reconciler
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_replacement import Replacement
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_routes import (
    conflicting_rule,
    route_colors,
    routes_from_documents,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.steps import instances as step_instances
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowSettings
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.flow import Flow
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import (
    PendingSwitch,
    commit,
    drop,
    outcome_for,
    possibly_served,
    record,
    refuse_if_possibly_served,
)
from fakes import FakeBackend, FakeConsulAPI, FakeConsulClient

COMPOSE = "services:\n  app:\n    image: %s\n    ports: ['8080']\n"


class FakeProxyNode:
    """The proxy container as the switch sees it: the configuration its running worker runs (``running``),
    haproxy.cfg (``file``), its backends, and how many servers the worker sees UP in each (``up``, by backend;
    missing means 1).

    ``fail_activation``: no new worker comes up (the real activate restores the file and says so);
    ``dead_after_switch``: backends whose servers the new worker marks DOWN while the switch watches them.
    How the real ProxyNode finds the running configuration by its generation is tested below
    (ContainerStub) and in tests/integration/test_proxy.py."""

    def __init__(self, consul, name="dockerflow-proxy"):
        self.consul = consul
        self.name = name
        self.settings = ProxySettings()
        self.running = None  # the running worker's configuration, None while the container does not exist
        self.file = None
        self.activated = []  # generations, in order
        self.up = {}
        self.lose_servers_after = None  # a number of activations: any later worker sees no server
        self.fail_activation = False
        self.dead_after_switch = set()
        self.held = []  # (backend, seconds) the switch watched
        self.fresh_checks = []  # the backends a swap asked for a check that ran after it
        self.dead_at_switch = set()  # backends whose servers fail the check a swap asks for
        self.unreachable = None  # a FlowError message: the proxy does not answer
        self.drifted = []  # what drift() reports of the running container
        self.files = {}  # what ensure_running wrote besides the configuration (the canary weights, crt-list)
        self.private_files = {}  # the certificates' PEM files (mode 0600 in the real one)
        self.commands = []  # what exec ran in the container, in order
        self.replacements = []  # the generations a new container took over with (replace), in order
        self.fail_replacement = None  # a FlowError message: the new container does not come up
        self.left_half_done = []  # what settle_replacement reports of a replacement a killed run left
        self.short_of_connections = None  # the warning connection_warning gives for any configuration

    def status(self):
        return "running" if self.running is not None else None

    def exec(self, command):
        """Only the removal of certificate sets: those no longer served (proxy_certificates.stale_sets_command), or
        the one a failed run wrote (``rm -rf``)."""
        self.commands.append(command)
        if command[0] == "rm":
            gone = command[-1].split("/usr/local/etc/haproxy/", 1)[1] + "/"
            self.private_files = {name: text for name, text in self.private_files.items() if not name.startswith(gone)}
            return 0, ""
        assert command[3] == "stale-certificates", command
        kept = "certs/%s/" % command[-1]
        self.private_files = {name: text for name, text in self.private_files.items() if name.startswith(kept)}
        return 0, ""

    def ensure_running(self, initial_config, check_mode=False, files=None, private_files=None):
        if not check_mode:
            self.files.update(files or {})
            self.private_files.update(private_files or {})
        if self.running is not None:
            return None
        if not check_mode:
            self.running = self.file = initial_config()
        return "created"

    def current_config(self):
        return self.file

    def connection_warning(self, config):
        return self.short_of_connections

    def running_config(self):
        return self.running

    def running_generation(self):
        if self.unreachable:
            raise FlowError(self.unreachable)
        return config_generation(self.running)

    def reports_generation(self, generation, within=5.0):
        return self.running_generation() == generation  # the real one waits out a leaving worker: ContainerStub below

    def serving_generation(self):
        return self.running_generation() if self.running is not None else None

    def restore_running_file(self):
        restored, self.file = self.file != self.running, self.running
        return restored

    def drift(self):
        return list(self.drifted) if self.running is not None else []

    def replacement(self):
        return FakeReplacement(self)

    def backends(self):
        return set(re.findall(r"^backend (\S+)$", self.running or "", re.MULTILINE))

    def activate(self, config, generation, running=False, target=None):
        if self.fail_activation:
            raise FlowError("HAProxy could not start a worker with the new configuration: cannot bind socket. "
                            "The previous configuration was restored.")
        self.running = self.file = config
        self.activated.append(generation)

    def swaps(self, config, running):
        return ProxyNode.swaps(self, config, running)

    def running_map(self):
        self.running_generation()  # FlowError when unreachable
        return LiveMap.of_config(self.running) if self.running is not None else None

    def recolor(self, live, previous, timeout=30):
        """The running worker's map (and the file's trailer) become ``live``, as ProxyNode.recolor does."""
        self.activate(body(self.running) + trailer(live.entries.items(), live.generation), live.generation)

    def write_files(self, files=None, private_files=None, check_mode=False):
        if not check_mode:
            self.files.update(files or {})
            self.private_files.update(private_files or {})

    def wait_for_a_fresh_check(self, backend, timeout, coming_up_timeout):
        self.fresh_checks.append(backend)
        if backend in self.dead_at_switch:
            raise FlowError("No server of %s passed a check within %gs of the switch." % (backend, timeout))
        return self.up.get(backend, 1)

    def wait_servers_up(self, backend, timeout):
        if self.lose_servers_after is not None and len(self.activated) > self.lose_servers_after:
            raise FlowError("The new worker sees no server of %s UP." % backend)
        count = self.up.get(backend, 1)
        if not count:
            raise FlowError("The proxy sees no server of %s UP after %ds." % (backend, timeout))
        return count

    def hold_servers_up(self, backend, seconds, since=None, http_checks=False, same_worker=False):
        self.held.append((backend, seconds))
        return 0 if backend in self.dead_after_switch else self.up.get(backend, 1)


class FakeReplacement(Replacement):
    """The real decisions (apply) on a FakeProxyNode; the containers' part (replace, settle) in memory. Docker's
    side is tested in tests/integration/test_proxy_replace.py."""

    def __init__(self, node):
        self.node = node

    def settle(self, check_mode=False):
        return list(self.node.left_half_done)

    def retiring(self):
        return list(self.node.left_half_done)

    def replace(self, generation, timeout=30, serving=lambda: None):
        if self.node.fail_replacement:
            raise FlowError(self.node.fail_replacement)  # the real one removed the new container: the old one serves
        self.node.replacements.append(generation)
        self.node.drifted = []
        return True


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(step_instances, "DNS_QUIESCE_SECONDS", 0)


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

    def deploy(self, service="books-app", image="dockerflow-test/app:1", scale=None):
        flow = self.flow(service, image)
        flow.settings.scale = scale
        return flow.deploy()

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
    assert served(proxied.node) == "blue" and "/api/books" in proxied.node.running
    document = proxied.document()
    assert document["live_color"] == "blue"
    assert document["routes"] == dict(result["routes"], proxy="dockerflow-proxy", max_servers=32)
    assert result["diff"]["before"] and result["diff"]["after"] == proxied.node.running


def test_the_same_switch_again_changes_nothing(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    again = proxied.proxy(service_path=["/api/books"])
    assert not again["changed"] and again["msg"] == "The proxy already routes books-app to blue."


def test_a_running_proxy_made_with_other_settings_is_replaced_with_the_configuration_it_runs(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.node.drifted = ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
    running = proxied.node.running
    flow = proxied.flow()
    result = ProxyFlow(flow, proxied.node, switch_timeout=0).run("synced")
    assert result["changed"] and result["proxy_outcome"] == "replaced" and not flow.warnings
    assert result["proxy_replaced"] == ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
    assert proxied.node.replacements == [config_generation(running)] and proxied.node.running == running
    assert "proxy dockerflow-proxy replaced without a gap: it runs image haproxy:2.8, not haproxy:3.0 (proxy_image)" \
        in flow.steps
    again = proxied.proxy(state="synced")
    assert not again["changed"] and "proxy_replaced" not in again and len(proxied.node.replacements) == 1


def test_a_replacement_in_check_mode_is_reported_and_not_made(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.node.drifted = ["has its master CLI on ipv4@127.0.0.1:9998, not ipv4@127.0.0.1:9997 (proxy_admin_address, "
                            "proxy_master_port)"]
    result = proxied.proxy(state="synced", check_mode=True)
    assert result["changed"] and result["proxy_outcome"] == "replaced" and result["proxy_replaced"] == proxied.node.drifted
    assert proxied.node.replacements == [] and any(step.startswith("proxy dockerflow-proxy would be replaced: it has its "
                                                                   "master CLI") for step in result["steps"])


def test_a_proxy_running_a_configuration_without_the_handover_socket_gets_it_before_the_replacement(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    rendered_before = proxied.node.running.replace("    stats socket %s mode 600 level admin expose-fd listeners\n"
                                                   % ADMIN_SOCKET, "")
    proxied.node.running = proxied.node.file = rendered_before  # what an older collection rendered
    proxied.node.drifted = ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
    activated = len(proxied.node.activated)
    proxied.proxy(state="synced")
    assert len(proxied.node.activated) == activated + 1 and ADMIN_SOCKET in proxied.node.running
    assert proxied.node.replacements == [config_generation(proxied.node.running)]


def test_a_failed_replacement_fails_the_run_in_one_line_and_records_nothing(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    before = proxied.document()
    proxied.node.drifted = ["runs image haproxy:2.8, not haproxy:3.0 (proxy_image)"]
    proxied.node.fail_replacement = ("Replacing proxy dockerflow-proxy failed, so the old container keeps serving: "
                                     "the new container exited with code 1")
    with pytest.raises(FlowError) as failed:
        proxied.proxy(state="synced")
    assert "\n" not in failed.value.msg and failed.value.msg.startswith("Replacing proxy dockerflow-proxy failed")
    assert proxied.document() == before


def test_a_replacement_a_killed_run_left_is_settled_before_anything_else(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.node.left_half_done = ["finished the replacement of proxy dockerflow-proxy that a run left half-done "
                                   "(dockerflow-proxy-retiring-0123456789ab)"]
    result = proxied.proxy(state="synced")
    assert result["steps"][0] == proxied.node.left_half_done[0]


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
    with pytest.raises(FlowError, match=r"UP: not switching; live color blue keeps serving; the previous configuration "
                                        r"was restored\.$"):
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


# -- a switch that survives a crash: the intent, its commit, and how later runs settle it ----------------------
class Killed(BaseException):
    """The module process killed at a checkpoint: nothing after it runs, no FlowError handling."""


@pytest.fixture
def kill_at(monkeypatch):
    """``kill_at(step)``: the next run that reaches ``step`` dies there (flow.checkpoint, the fault tests' pause point)."""
    armed = []

    def checkpoint(_flow, name):
        if armed and armed[0] == name:
            armed.clear()
            raise Killed(name)

    monkeypatch.setattr(Flow, "checkpoint", checkpoint)
    return armed.append


def served(node, service="books-app"):
    """The color the fake proxy's running worker routes ``service`` to."""
    found = re.findall(r"^# live-color %s (\w+)$" % service, node.running or "", re.MULTILINE)  # live_map
    return found[0] if found and live_backend(service) in node.running else None


def switched_twice(proxied, kill_at, step, scale="1"):
    """books-app live on blue, green deployed, and the switch to green killed at ``step``."""
    proxied.deploy(scale=scale)
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2", scale=scale)
    kill_at(step)
    with pytest.raises(Killed):
        proxied.proxy()


def stop_old(proxied, make_node=None):
    flow = proxied.flow()
    flow.switch_reconciler = proxy_reconciler(flow, make_node or (lambda: proxied.node))
    return flow, flow.stop_old()


def test_the_intent_is_recorded_before_activating_and_committed_with_the_live_color_in_one_write(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    seen = []
    activate = proxied.node.activate

    def watching(config, generation, **kwargs):
        seen.append((generation, proxied.document()))
        activate(config, generation, **kwargs)
        proxied.consul.calls.append(("activated", generation))

    proxied.node.activate = watching
    proxied.proxy()
    generation, during = seen[-1]
    assert during["pending_switch"]["color"] == "green" and during["pending_switch"]["generation"] == generation
    assert during["pending_switch"]["proxy"] == "dockerflow-proxy" and during["pending_switch"]["previous_color"] == "blue"
    assert during["live_color"] == "blue" and during["routes"]["color"] == "blue", "nothing committed before it serves"
    after = proxied.document()
    assert "pending_switch" not in after and after["live_color"] == "green" and after["routes"]["color"] == "green"
    calls = proxied.consul.calls
    # A write of the state: a plain CAS put, or the fenced one (a transaction naming the state key).
    writes_after = [c for c in calls[calls.index(("activated", generation)):]
                    if c == ("kv.put", "dockerflow/services/books-app")
                    or (c[0] == "txn" and "dockerflow/services/books-app" in c[1])]
    assert len(writes_after) == 1, "live color, routes and the intent's removal are one CAS write"


def test_killed_after_activating_the_next_switch_finishes_it(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:activated")
    document = proxied.document()
    assert (document["live_color"], document["pending_switch"]["color"], served(proxied.node)) == ("blue", "green", "green")
    activations = len(proxied.node.activated)
    flow = proxied.flow()
    result = ProxyFlow(flow, proxied.node, switch_timeout=0).run("present")
    assert flow.reconciled["books-app"]["outcome"] == "finished" and flow.reconciled["books-app"]["live_color"] == "green"
    assert result["msg"] == "The proxy already routes books-app to green." and not result["changed"]
    assert len(proxied.node.activated) == activations
    assert proxied.document()["live_color"] == "green" and "pending_switch" not in proxied.document()
    assert flow.warnings[0].startswith("Finished the interrupted switch of books-app to green (proxy dockerflow-proxy, since ")
    assert "running worker reports its configuration" in flow.steps[0]


def test_killed_before_activating_stop_old_reverts_it_and_stops_only_what_is_not_served(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:switch")
    assert served(proxied.node) == "blue" and proxied.document()["pending_switch"]["color"] == "green"
    flow, result = stop_old(proxied)
    assert flow.reconciled["books-app"]["outcome"] == "reverted"
    assert "the proxy serves generation" in flow.steps[0] and "live color blue keeps serving" in flow.steps[0]
    assert result["stopped"] == ["books-app-green-1"] and result["live_color"] == "blue"
    assert "pending_switch" not in proxied.document() and served(proxied.node) == "blue"


def test_killed_after_activating_stop_old_finishes_it_and_keeps_what_is_served(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:activated")
    flow, result = stop_old(proxied)
    assert flow.reconciled["books-app"]["outcome"] == "finished"
    assert result["stopped"] == ["books-app-blue-1"] and result["live_color"] == "green"
    assert served(proxied.node) == "green"


def test_a_switch_of_color_alone_asks_for_a_check_that_runs_after_the_intent_and_refuses_a_target_that_fails_it(proxied):
    """A swap keeps the worker that checked the target before the switch: a server killed once the intent was recorded
    would still be UP there. Nothing is activated when no server passes a check that ran since."""
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    running, activated = proxied.node.running, list(proxied.node.activated)
    proxied.node.dead_at_switch.add("be_books-app_green")
    with pytest.raises(FlowError, match=r"^No server of be_books-app_green passed a check within 3s of the switch\. Not "
                                        r"switching\. Live color blue keeps serving\.$"):
        proxied.proxy()
    assert proxied.node.fresh_checks == ["be_books-app_green"] and proxied.node.activated == activated
    assert proxied.node.running == running and served(proxied.node) == "blue"
    state = proxied.document()
    assert state["live_color"] == "blue" and "pending_switch" not in state
    proxied.node.dead_at_switch.clear()
    assert proxied.proxy()["live_color"] == "green" and served(proxied.node) == "green"


def whole_render(proxied, settings=None):
    """The configuration that rendering every recorded route gives, as a switch that renders it all would activate."""
    documents = {key.rsplit("/", 1)[1]: json.loads(entry["Value"]) for key, entry in proxied.consul.kv.entries.items()
                 if key.startswith("dockerflow/services/")}
    return render(routes_from_documents(documents, proxied.node.name), settings or proxied.node.settings)


def test_a_switch_of_the_color_alone_reads_only_its_own_state_renders_nothing_and_runs_what_a_render_would(
        proxied, monkeypatch):
    """Issue 15: a switch whose cost does not grow with the routes. The running worker's map says it runs the route
    as asked (its fingerprint): only the color changes, through the same intent, fresh check and commit."""
    proxied.deploy()
    proxied.deploy(service="shop-app")
    proxied.proxy(service="shop-app", service_path=["/shop"])
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    renders = []
    monkeypatch.setattr(proxy_flow, "render", lambda *args, **kwargs: renders.append(args))
    proxied.consul.calls.clear()
    result = proxied.proxy()
    assert result["changed"] and result["live_color"] == "green" and served(proxied.node) == "green"
    assert renders == [] and ("kv.get", "dockerflow/services/") not in proxied.consul.calls, \
        "no render, and no read of every service's state"
    assert ("kv.get", "dockerflow/services/books-app") in proxied.consul.calls
    assert proxied.node.fresh_checks == ["be_books-app_green"], "the target passed a check that ran after the intent"
    assert result["diff"]["before_header"] == "live-colors.map (running)"
    assert "books-app blue\n" in result["diff"]["before"] and "books-app green\n" in result["diff"]["after"]
    monkeypatch.undo()
    config, generation = whole_render(proxied)
    assert proxied.node.running == config and proxied.document()["routes"]["color"] == "green", \
        "the same configuration, generation included, as a render of every route"
    assert "pending_switch" not in proxied.document() and proxied.node.activated[-1] == generation
    again = proxied.proxy()
    assert not again["changed"] and again["msg"] == "The proxy already routes books-app to green."


@pytest.mark.parametrize("change", ["path", "settings", "canary", "preview"])
def test_a_switch_that_changes_more_than_the_color_renders_every_route(proxied, change):
    """Another path, settings the proxy renders with (its checks), a canary that takes a share, or a preview (its
    rules name the color that is not live): the worker's map does not hold the route's fingerprint, so the whole
    configuration is rendered and reloaded. (The preview case failed in tests/integration/test_proxy_preview.py
    when the fingerprint was of the route's fields: the preview kept naming the old preview color.)"""
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"], preview={"header": "X-Preview"} if change == "preview" else None)
    proxied.deploy(image="dockerflow-test/app:2")
    options = {"service_path": ["/api/books", "/books"]} if change == "path" else {}
    if change == "settings":
        proxied.node.settings = replace(proxied.node.settings, check_interval_ms=500)
    if change == "canary":
        proxied.consul.kv.entries["dockerflow/services/books-app"]["Value"] = json.dumps(dict(
            proxied.document(), routes=dict(proxied.document()["routes"], canary={"color": "green", "weight": 10})))
        config, _generation = whole_render(proxied)
        proxied.node.running = proxied.node.file = config
    proxied.proxy(**options)
    config, _generation = whole_render(proxied)
    assert proxied.node.running == config and served(proxied.node) == "green"
    assert proxied.node.fresh_checks == [], "a reload: the new worker checks every server itself"


def test_a_revert_puts_the_running_configuration_back_into_the_file(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:switch")
    proxied.node.file = proxied.node.running.replace("live-color books-app blue", "live-color books-app green")  # after mv
    flow, _result = stop_old(proxied)
    assert proxied.node.file == proxied.node.running
    assert "haproxy.cfg held that switch's configuration, which never ran: the running one is back" in flow.steps


@pytest.mark.parametrize("step", ["proxy:switch", "proxy:activated"])
def test_steps_that_cannot_ask_the_proxy_replace_and_stop_neither_color(proxied, kill_at, step):
    switched_twice(proxied, kill_at, step, scale="2")
    instances = sorted(i.name for i in proxied.backend.instances.values())
    how = r"Run flow_proxy \(or flow_proxy state=synced\) to finish the interrupted switch\.$"
    intro = (r"^Service books-app has an interrupted proxy switch to green \(proxy dockerflow-proxy, since [0-9TZ:-]+\), "
             r"so the proxy may serve blue or green: ")
    flow = proxied.flow(image="dockerflow-test/app:3")
    with pytest.raises(FlowError, match=intro + "deploy would replace green, refused. " + how):
        flow.deploy()
    assert flow.reconciled["books-app"]["outcome"] == "unchecked"
    assert "this module does not reach the proxy" in flow.warnings[0]
    for color in ("blue", "green"):
        scaling = proxied.flow()
        scaling.settings.scale, scaling.settings.color = "1", color
        with pytest.raises(FlowError, match=intro + "scaling down would stop instances of %s, refused. " % color + how):
            scaling.scale()
    with pytest.raises(FlowError, match=intro + "a rollback cannot tell which release is the previous one, refused. " + how):
        proxied.flow().rollback()

    def unreachable():
        raise FlowError("Cannot reach the proxy's Docker engine: connection refused.")

    with pytest.raises(FlowError, match=intro + "stop-old cannot tell which color to keep, refused. " + how):
        stop_old(proxied, unreachable)
    proxied.node.unreachable = "HAProxy's runtime API in dockerflow-proxy did not answer"
    with pytest.raises(FlowError, match=intro + "stop-old cannot tell which color to keep"):
        stop_old(proxied)
    assert sorted(i.name for i in proxied.backend.instances.values()) == instances
    assert not proxied.backend.stopped and not proxied.backend.removed
    growing = proxied.flow()
    growing.settings.scale = "+1"
    assert growing.scale()["instances_count"] == 3, "adding instances replaces nothing"
    assert "pending_switch" in proxied.document()


def test_a_proxy_run_that_cannot_settle_the_switch_refuses_to_record_another(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:activated")
    proxied.node.unreachable = "HAProxy's runtime API in dockerflow-proxy did not answer 'show backend'"
    with pytest.raises(FlowError, match=r"^The interrupted switch of books-app to green .* is not settled: proxy "
                                        r"dockerflow-proxy did not answer: .*Run flow_proxy"):
        proxied.proxy()
    assert proxied.document()["pending_switch"]["color"] == "green"


def test_an_activation_no_new_worker_takes_drops_the_intent(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    before = proxied.node.running
    proxied.node.fail_activation = True
    with pytest.raises(FlowError, match=r"cannot bind socket\. The previous configuration was restored\.$"):
        proxied.proxy()
    document = proxied.document()
    assert document["live_color"] == "blue" and "pending_switch" not in document and proxied.node.running == before


def test_a_target_that_dies_during_the_switch_is_refused_and_the_previous_configuration_restored(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    before = proxied.node.running
    proxied.node.dead_after_switch = {"be_books-app_green"}
    with pytest.raises(FlowError, match=r"^The proxy marked every server of be_books-app_green DOWN within 3s of the "
                                        r"switch \(2 failed checks in a row mark a server DOWN\): not switching; live color blue "
                                        r"keeps serving; the previous configuration was restored\.$"):
        proxied.proxy()
    document = proxied.document()
    assert document["live_color"] == "blue" and "pending_switch" not in document
    assert proxied.node.running == before and served(proxied.node) == "blue"


def test_the_watch_after_a_switch_lasts_as_long_as_the_checks_need_to_find_a_dead_server(proxied):
    proxied.node.settings = ProxySettings(check_interval_ms=250, check_fall=3)
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    assert proxied.node.held == [("be_books-app_blue", 1.0)]
    assert "check inter 250ms fastinter 250ms fall 3 rise 1" in proxied.node.running


def test_a_commit_consul_does_not_take_leaves_the_intent_for_the_next_run(proxied):
    proxied.deploy()
    proxied.proxy(service_path=["/api/books"])
    proxied.deploy(image="dockerflow-test/app:2")
    activate = proxied.node.activate

    def then_consul_fails(config, generation, **kwargs):
        activate(config, generation, **kwargs)

        def refuse(_kv):
            raise requests.exceptions.ConnectionError()

        proxied.consul.before_put.append(refuse)

    proxied.node.activate = then_consul_fails
    with pytest.raises(FlowError, match=r"^Cannot reach Consul .* The proxy serves books-app from green; the next "
                                        r"flow_proxy or flow_stop_old run records it \(the switch is recorded as pending\)\.$"):
        proxied.proxy()
    assert proxied.document()["pending_switch"]["color"] == "green" and served(proxied.node) == "green"
    proxied.node.activate = activate
    flow = proxied.flow()
    ProxyFlow(flow, proxied.node, switch_timeout=0).run("present")
    assert flow.reconciled["books-app"]["outcome"] == "finished" and proxied.document()["live_color"] == "green"


def test_synced_settles_every_interrupted_switch_of_its_proxy(proxied, kill_at):
    proxied.deploy(service="shop-app")
    proxied.proxy(service="shop-app", service_path=["/shop"])
    proxied.deploy(service="shop-app", image="dockerflow-test/app:2")
    switched_twice(proxied, kill_at, "proxy:activated")
    kill_at("proxy:switch")
    with pytest.raises(Killed):
        proxied.proxy(service="shop-app")
    assert (served(proxied.node), served(proxied.node, "shop-app")) == ("green", "blue")
    flow = proxied.flow()
    ProxyFlow(flow, proxied.node, switch_timeout=0).run("synced")
    assert {service: entry["outcome"] for service, entry in flow.reconciled.items()} == {
        "books-app": "finished", "shop-app": "reverted"}
    assert proxied.document()["live_color"] == "green" and proxied.document("shop-app")["live_color"] == "blue"
    assert (served(proxied.node), served(proxied.node, "shop-app")) == ("green", "blue")


def test_another_services_switch_renders_the_recorded_route_so_the_interrupted_one_is_reverted(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:activated")
    proxied.deploy(service="shop-app")
    proxied.proxy(service="shop-app", service_path=["/shop"])  # renders books-app from its recorded route: blue
    assert served(proxied.node) == "blue"
    flow, result = stop_old(proxied)
    assert flow.reconciled["books-app"]["outcome"] == "reverted" and result["stopped"] == ["books-app-green-1"]


def test_check_mode_says_how_it_would_settle_and_writes_nothing(proxied, kill_at):
    switched_twice(proxied, kill_at, "proxy:activated")
    flow = proxied.flow(check_mode=True)
    result = ProxyFlow(flow, proxied.node, switch_timeout=0).run("present")
    assert flow.steps[0].startswith("would have finished the interrupted switch of books-app to green")
    assert result["live_color"] == "green"
    assert proxied.document()["pending_switch"]["color"] == "green" and proxied.document()["live_color"] == "blue"


def test_the_intent_mutations_touch_only_their_own_generation():
    intent = PendingSwitch.new("green", "abc", "p", {"color": "green", "paths": ["/x"], "proxy": "p"}, "blue")
    document = {"service": "s", "live_color": "blue", "routes": {"color": "blue"}}
    record(document, intent)
    assert possibly_served(document) == {"blue", "green"}
    for mutate in (commit, drop):
        untouched = json.loads(json.dumps(document))
        mutate(untouched, "another")
        assert untouched == document
    committed = json.loads(json.dumps(document))
    commit(committed, "abc")
    assert committed == {"service": "s", "live_color": "green", "routes": {"color": "green", "paths": ["/x"], "proxy": "p"}}
    drop(document, "abc")
    assert document == {"service": "s", "live_color": "blue", "routes": {"color": "blue"}}
    assert possibly_served(document) == {"blue"}
    refuse_if_possibly_served(document, ["blue"], "deploy would replace")  # no intent: the steps' own rules apply
    assert outcome_for(intent, "abc") == "finished" and outcome_for(intent, "def") == "reverted"
    assert outcome_for(intent, None) == "reverted"


# -- the real ProxyNode: what runs is what the worker reports, and an activation is all or nothing ---------------
class ContainerStub(ProxyNode):
    """The real ProxyNode over an in-memory container (its Docker calls replaced): files, a worker that
    loads haproxy.cfg and its live colors' map on a reload, or fails to (``new_workers_fail``, as when it cannot bind
    its port), whose map the runtime API swaps (live_map), and the CLI answers ProxyNode reads. The real container:
    tests/integration/test_proxy.py."""

    def __init__(self, config):
        super().__init__(types.SimpleNamespace(api=None), ProxySettings())
        self.direct = False  # the CLI answers come through exec(), as from a remote engine
        self.files = {CONFIG_FILE: config, LIVE_MAP_FILE: map_text(config)}
        self.worker = config
        self.worker_map = map_text(config)  # the running worker's map, as `show map` would list it
        self.pending_map = ""  # a version prepared and not committed
        self.failed = 0
        self.reloads = 0
        self.map_commits = 0
        self.refuse_commits = 0  # how many map commits the runtime API refuses
        self.new_workers_fail = False
        self.check_refuses = False  # haproxy -c refuses every candidate (the reload script exits 3)
        self.leaving = None  # the configuration and map of the worker a reload replaced
        self.leaving_answers = 0  # runtime queries that still reach that worker (before it has unbound)

    def status(self):
        return "running"

    def read_file(self, path):
        return self.files.get(path)

    def put_files(self, files):
        self.files.update({"%s/%s" % (CONFIG_DIR, name): text for name, text in files.items()})

    def logs(self, tail=20):
        return "[ALERT]    (1) : Binding for frontend http: cannot bind socket (Address already in use)\n"

    def exec(self, command):
        if command[1] == RELOAD_SCRIPT and command[5:6] == ["recolor"]:
            return self.recolor_files(command[6], command[7:])
        if command[1] == RELOAD_SCRIPT:
            if command[-1] == "install" and self.check_refuses:
                return 3, "[NOTICE]   (9) : haproxy 3.0.11\n[ALERT]    (9) : config : parsing [x:3] : unknown keyword\n"
            if command[-1] in ("install", "place"):
                self.files[CONFIG_FILE] = self.files.pop(CANDIDATE_FILE)
                self.files[LIVE_MAP_FILE] = map_text(self.files[CONFIG_FILE])
            if command[-1] == "place":
                return 0, ""
            self.reloads += 1
            if self.new_workers_fail:
                self.failed += 1
            else:
                self.leaving = (self.worker, self.worker_map)
                self.worker, self.worker_map, self.failed = self.files[CONFIG_FILE], self.files[LIVE_MAP_FILE], 0
            return 0, ""
        return 0, self.answer(command[3], through_master=command[2] == str(self.master_port))

    def recolor_files(self, body_digest, lines):
        """The reload script's recolor: ``lines`` under the body of the file that holds ``body_digest``."""
        base = next((path for path in (CONFIG_FILE, PREVIOUS_FILE)
                     if "# live-color .body %s\n" % body_digest in (self.files.get(path) or "")), None)
        if base is None:
            return 4, "neither haproxy.cfg nor its previous copy holds the configuration the proxy runs\n"
        candidate = body(self.files[base]) + "".join("# live-color %s\n" % line for line in lines)
        if base == CONFIG_FILE:
            self.files[PREVIOUS_FILE] = self.files[CONFIG_FILE]
        self.files[CONFIG_FILE], self.files[LIVE_MAP_FILE] = candidate, map_text(candidate)
        return 0, ""

    def answer(self, line, through_master=False):
        """The runtime API's (or the master CLI's) answer to ``line``. The runtime API's port can reach the leaving
        worker (``leaving_answers``), writes included; the master CLI's ``@1`` always reaches the newest one."""
        newest, line = line.startswith("@1 "), line[3:] if line.startswith("@1 ") else line
        stale = bool(self.leaving_answers and not newest and not through_master)
        if stale:  # the leaving worker answers: a change of its map is lost with it
            self.leaving_answers -= 1
        config, answering_map = self.leaving if stale else (self.worker, self.worker_map)
        if line == "show backend":
            return "# name\n" + "\n".join(re.findall(r"^backend (\S+)$", config, re.MULTILINE)) + "\n"
        if line == "show proc":
            return "1  master  %d [failed: %d]  0d00h01m10s  3.0.11\n# workers\n" % (self.reloads, self.failed)
        if line.startswith("show map"):
            if "backend be_dockerflow_live_colors" not in config:
                return "Unknown map identifier. Please use #<id> or <file>.\n\n"
            return "".join("0x%x %s\n" % (0x5500 + index, entry) for index, entry in enumerate(answering_map.splitlines()))
        if line.startswith("get map"):
            if "backend be_dockerflow_live_colors" not in config:  # an earlier release's: it loaded no such map
                return "Unknown map identifier. Please use #<id> or <file>.\n\n"
            key = line.split()[-1]
            values = [entry.split(" ", 1)[1] for entry in answering_map.splitlines() if entry.split(" ", 1)[0] == key]
            return ('type=str, found=yes, idx=tree, key="%s", value="%s", type="str"\n\n' % (key, values[0])
                    if values else "type=str, found=no\n\n")
        if line.startswith("prepare map"):
            self.pending_map = ""
            return "New version created: %d\n\n" % (self.map_commits + 1)
        if line.startswith("add map @"):
            self.pending_map += line.split("<<\n", 1)[1].rstrip("\n") + "\n"
            return "\n"
        if line.startswith("commit map @"):
            if self.refuse_commits:
                self.refuse_commits -= 1
                return "Unknown version (not committed).\n\n"
            if not stale:
                self.worker_map, self.map_commits = self.pending_map, self.map_commits + 1
            return "\n"
        return ""


def rendered(path, color="blue"):
    return render([Route("books", color, paths=(path,), colors=("blue", "green"))], ProxySettings())


def test_a_switch_that_changes_only_the_live_color_swaps_the_worker_s_map_and_does_not_reload():
    (blue, gen1), (green, gen2) = rendered("/a"), rendered("/a", "green")
    node = ContainerStub(blue)
    node.activate(green, gen2)
    assert (node.reloads, node.map_commits) == (0, 1) and node.worker == blue, "the same worker, its map swapped"
    assert node.worker_map == map_text(green) == node.files[LIVE_MAP_FILE] and "books green" in node.worker_map
    assert node.running_generation() == gen2 and node.running_config() == green
    assert node.files[CONFIG_FILE] == green and node.files[PREVIOUS_FILE] == blue
    node.activate(blue, gen1)  # and back, as a rollback
    assert (node.reloads, node.map_commits) == (0, 2) and node.running_generation() == gen1


def test_a_swap_sends_the_map_s_lines_alone_under_the_running_body_of_either_file_or_refuses_changing_nothing():
    """The reload script's recolor step (its bash: tests/integration/test_proxy.py): no configuration goes into the
    container for a swap, only the map's lines; the file that holds the running body takes them."""
    (blue, gen1), (green, gen2) = rendered("/a"), rendered("/a", "green")
    node = ContainerStub(blue)
    node.activate(green, gen2)
    assert CANDIDATE_FILE not in node.files and node.files[CONFIG_FILE] == green and node.files[PREVIOUS_FILE] == blue
    node.files[CONFIG_FILE] = "# a file a killed run left\n"
    node.activate(blue, gen1, running=green)  # the body is found in the previous copy
    assert node.files[CONFIG_FILE] == blue and node.running_generation() == gen1
    node.files[CONFIG_FILE] = node.files[PREVIOUS_FILE] = "# edited\n"
    with pytest.raises(FlowError, match=r"^Installing the new live colors in the HAProxy configuration failed: neither "
                                        r"haproxy.cfg nor its previous copy holds the configuration the proxy runs; "
                                        r"flow_proxy state=synced installs it again\.$"):
        node.activate(green, gen2, running=blue)
    assert node.running_generation() == gen1 and node.files[CONFIG_FILE] == "# edited\n" and node.map_commits == 2


def test_a_proxy_an_earlier_release_configured_is_read_by_its_marker_backend_and_reloaded_into_the_map():
    legacy = "# Generated by dockerflow.flow\nfrontend http\n\nbackend be_dockerflow_generation_0ld0ld0ld0ld\n"
    (green, gen2) = rendered("/a", "green")
    node = ContainerStub(legacy)
    assert node.running_generation() == "0ld0ld0ld0ld" and node.running_config() == legacy
    node.activate(green, gen2)
    assert node.reloads == 1 and node.running_generation() == gen2 and node.worker_map == map_text(green)


def test_a_map_swap_the_worker_refuses_puts_the_previous_file_and_map_back():
    (blue, gen1), (green, gen2) = rendered("/a"), rendered("/a", "green")
    node = ContainerStub(blue)
    node.refuse_commits = 1
    with pytest.raises(FlowError, match=r"^HAProxy's runtime API refused a change of live-colors.map: Unknown version "
                                        r"\(not committed\)\. The previous configuration was restored\.$"):
        node.activate(green, gen2)
    assert node.files[CONFIG_FILE] == blue and node.files[LIVE_MAP_FILE] == map_text(blue) == node.worker_map
    assert node.running_generation() == gen1 and node.reloads == 0


def test_a_run_killed_between_installing_a_color_and_swapping_it_leaves_a_file_the_next_run_puts_back():
    (blue, gen1), (green, gen2) = rendered("/a"), rendered("/a", "green")
    node = ContainerStub(blue)
    node.activate(green, gen2)
    node.worker_map = map_text(blue)  # as if killed after the files were placed, before the map was swapped
    assert node.running_generation() == gen1 and node.running_config() == blue
    assert node.restore_running_file() and node.files[CONFIG_FILE] == blue and node.files[LIVE_MAP_FILE] == map_text(blue)


def test_an_activation_no_new_worker_takes_puts_the_previous_file_back_at_once():
    (first, _gen1), (second, gen2) = rendered("/a"), rendered("/b")
    node = ContainerStub(first)
    node.new_workers_fail = True
    with pytest.raises(FlowError, match=r"^HAProxy could not start a worker with the new configuration: \[ALERT\].*cannot "
                                        r"bind socket \(Address already in use\) The previous configuration was restored\.$"):
        node.activate(second, gen2)
    assert node.files[CONFIG_FILE] == first and node.worker == first and node.reloads == 1, "no reload back needed"
    node.new_workers_fail = False
    node.activate(second, gen2)
    assert node.files[CONFIG_FILE] == second == node.worker and node.files[PREVIOUS_FILE] == first


def test_a_configuration_haproxy_refuses_is_not_installed_and_nothing_is_put_back():
    """The check runs in the reload script's docker exec, before the candidate is moved: exit 3 says it refused."""
    (first, _gen1), (second, gen2) = rendered("/a"), rendered("/b")
    node = ContainerStub(first)
    node.check_refuses = True
    with pytest.raises(FlowError, match=r"^The new HAProxy configuration was rejected by haproxy -c, so it was not "
                                        r"activated: \[ALERT\]    \(9\) : config : parsing \[x:3\] : unknown keyword$") as error:
        node.activate(second, gen2)
    assert error.value.details["haproxy_output"][1].startswith("[ALERT]")
    assert node.files[CONFIG_FILE] == first == node.worker and node.files[CANDIDATE_FILE] == second
    assert node.reloads == 0


def test_what_the_worker_reports_and_a_map_swap_reach_the_newest_worker_not_the_one_a_reload_replaced():
    """Right after a reload the runtime API's port can reach the leaving worker (make test, 2026-12-03: a rollback's
    switch was reverted because a read reached it). A map swapped there is lost with that worker: the first
    integration run of the map swap switched to green while the new worker kept blue (test_proxy.py,
    test_switch_under_load_fails_no_request). Both go through the master CLI's ``@1``: the newest worker."""
    (first, _gen1), (second, gen2) = rendered("/a"), rendered("/b")
    (green, gen3) = rendered("/b", "green")
    node = ContainerStub(first)
    node.activate(second, gen2)
    node.leaving_answers = 5
    node.runtime("show backend")
    assert node.leaving_answers == 4, "the runtime API's port reached the leaving worker"
    assert node.running_generation() == gen2
    node.activate(green, gen3, timeout=1)
    assert node.worker_map == map_text(green) and node.running_generation() == gen3 and node.reloads == 1


def test_a_worker_that_runs_another_configuration_does_not_report_the_switch():
    (first, _gen1), (_second, gen2) = rendered("/a"), rendered("/b")
    node = ContainerStub(first)
    started = time.monotonic()
    assert not node.reports_generation(gen2, within=0.5)
    assert time.monotonic() - started >= 0.5


def test_the_running_configuration_is_what_the_worker_reports_not_the_file():
    (first, gen1), (second, gen2) = rendered("/a"), rendered("/b")
    node = ContainerStub(first)
    node.activate(second, gen2)
    node.worker, node.worker_map = first, map_text(first)  # as if killed between installing the file and the reload
    assert node.running_generation() == gen1 and node.current_config() == second
    assert node.running_config() == first, "found in the copy the activation kept"
    assert node.restore_running_file() and node.current_config() == first
    node.files[CONFIG_FILE] = node.files.pop(PREVIOUS_FILE).replace(gen1, "edited")
    assert node.running_config() is None, "neither file holds what runs: the file is not the truth"


def test_the_proxy_s_connection_warning_is_said_once_however_many_activations_a_switch_takes(proxied):
    """A first switch activates twice (the target's backend first, then the route): one warning, not two."""
    proxied.deploy()
    proxied.node.short_of_connections = "Proxy dockerflow-proxy accepts at most 372 connections at once: ..."
    shop = proxied.flow()
    ProxyFlow(shop, proxied.node, switch_timeout=0).run("present", service_path=["/books"])
    assert len(proxied.node.activated) == 2 and shop.warnings == [proxied.node.short_of_connections]
