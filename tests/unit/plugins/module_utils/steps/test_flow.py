# -*- coding: utf-8 -*-
"""The flows' decisions: which color a release gets, how many instances, what a step keeps,
stops or removes, what a failure undoes, and what check mode predicts.

Docker and Consul are in-memory stand-ins here (tests/unit/fakes.py), because these tests
are about the decisions, not the engine: tests/integration runs every step against the
real engine and Consul.
"""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils import registration
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import ServiceLock, lock_key
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.health import Probe
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import service_id_for
from ansible_collections.dockerflow.flow.plugins.module_utils.steps import instances as step_instances
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowSettings
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.flow import Flow
from fakes import FakeBackend, FakeConsulAPI, FakeConsulClient

SERVICE = "books-app"

COMPOSE = """
services:
  app:
    image: %s
    ports: ["8080"]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: dockerflow-test/base:bookworm
  cache:
    image: dockerflow-test/base:bookworm
"""


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """The proxy's DNS hold time and Consul polling are real-time waits in production."""
    monkeypatch.setattr(step_instances, "DNS_QUIESCE_SECONDS", 0)
    monkeypatch.setattr(registration, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(step_instances, "DEREGISTRATION_WAIT_SECONDS", 0.05)


class World:
    """One service's engine and Consul, and flows run against them."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.backend = FakeBackend()
        self.consul = FakeConsulAPI()
        self.client = FakeConsulClient(self.consul)
        self.set_image("dockerflow-test/app:1")

    def set_image(self, image):
        path = self.tmp_path / "docker-compose.yml"
        path.write_text(COMPOSE % image, encoding="utf-8")
        self.compose_path = str(path)

    def flow(self, check_mode=False, **options):
        settings = dict(service=SERVICE, project="books", target="app", compose_path=self.compose_path,
                        health_timeout=5, lock_timeout=5, deployed_by="tester")
        settings.update(options)
        return Flow(self.backend, self.client, FlowSettings(**settings), check_mode=check_mode)

    def run(self, step, check_mode=False, **options):
        flow = self.flow(check_mode=check_mode, **options)
        result = getattr(flow, step)()
        result["warnings"] = flow.warnings
        return result

    @property
    def state(self):
        return self.consul.document(SERVICE)

    def go_live(self, color):
        """What flow_proxy records after a switch."""
        self.flow().store.update(SERVICE, lambda doc: doc.update(live_color=color, routes={"paths": ["/books"]}))

    def running(self, color):
        return sorted(i.name for i in self.backend.list_instances(SERVICE) if i.color == color and i.running)

    def registered(self):
        return sorted(self.consul.services)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


# -- deploy ---------------------------------------------------------------------------------


def test_first_deploy_runs_blue_release_1_registers_it_and_records_it(world):
    result = world.run("deploy")
    assert result["changed"] and (result["color"], result["release"]) == ("blue", 1)
    assert world.running("blue") == ["books-app-blue-1"]
    assert world.registered() == [service_id_for("books-app-blue-1")]
    assert world.consul.services[service_id_for("books-app-blue-1")]["Status"] == "passing"
    state = world.state
    assert (state["deployed_color"], state["live_color"], state["next_release"]) == ("blue", None, 2)
    assert state["colors"]["blue"]["instances"] == 1 and state["colors"]["blue"]["port"] == "8080/tcp"
    assert [r["release"] for r in state["releases"]] == [1] and state["releases"][0]["deployed_by"] == "tester"
    # side targets the target depends on come up first
    assert world.backend.side_targets == ["db"]
    assert result["diff"]["before"]["deployed_color"] is None and result["diff"]["after"]["deployed_color"] == "blue"


def test_deploy_reads_the_given_env_files_instead_of_dotenv(world, tmp_path):
    world.set_image("dockerflow-test/app:${TAG:?set TAG in release.env}")
    (tmp_path / ".env").write_text("TAG=from-dotenv\n", encoding="utf-8")
    (tmp_path / "release.env").write_text("TAG=2\n", encoding="utf-8")
    world.run("deploy", env_files=["release.env"])
    assert [i.image for i in world.backend.list_instances(SERVICE)] == ["dockerflow-test/app:2"]
    (tmp_path / "release.env").write_text("OTHER=1\n", encoding="utf-8")
    with pytest.raises(FlowError, match=r"docker-compose\.yml: variable TAG is required: set TAG in release\.env$"):
        world.run("deploy", env_files=["release.env"])


def test_the_same_configuration_again_changes_nothing_unless_forced(world):
    world.run("deploy")
    again = world.run("deploy")
    assert not again["changed"] and "already runs this configuration" in again["msg"]
    forced = world.run("deploy", force=True)
    assert forced["changed"] and (forced["color"], forced["release"]) == ("green", 2)


def test_the_next_release_goes_beside_the_live_one_at_its_count(world):
    world.run("deploy", scale="3")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    result = world.run("deploy")
    assert (result["color"], result["release"]) == ("green", 2)
    assert len(world.running("green")) == 3 and len(world.running("blue")) == 3  # the live color is untouched
    assert world.state["live_color"] == "blue" and world.state["deployed_color"] == "green"


def test_deploying_twice_before_a_switch_replaces_the_unswitched_color_only(world):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.set_image("dockerflow-test/app:3")
    result = world.run("deploy")
    assert (result["color"], result["release"]) == ("green", 3)
    assert world.running("blue") == ["books-app-blue-1"]
    assert [i.release for i in world.backend.list_instances(SERVICE) if i.color == "green"] == [3]
    assert "books-app-green-1" in world.backend.removed  # release 2's instance, replaced
    assert any("removed 1 older green instance(s)" in step for step in result["steps"])


def test_scale_and_max_instances_bound_a_deploy(world):
    result = world.run("deploy", scale="+2", max_instances=3)
    assert len(result["instances"]) == 3 and world.state["colors"]["blue"]["instances"] == 3


def test_a_deploy_scale_above_max_instances_is_refused_before_anything_runs(world):
    world.run("deploy", scale="3")
    world.go_live("blue")
    before = world.state
    with pytest.raises(FlowError) as caught:
        world.run("deploy", scale="+1", max_instances=3, force=True)
    assert caught.value.msg == "scale=+1 would run 4 instance(s) (3 run now), more than max_instances=3."
    with pytest.raises(FlowError, match=r"^scale=5 would run 5 instance\(s\) \(3 run now\), more than max_instances=3\.$"):
        world.run("deploy", scale="5", max_instances=3, force=True)
    assert world.state == before and world.running("green") == []


def test_an_inherited_count_above_max_instances_is_capped_with_a_warning(world):
    world.run("deploy", scale="3")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    result = world.run("deploy", max_instances=2)
    assert len(result["instances"]) == 2
    assert result["warnings"] == ["max_instances=2 caps release 2 at 2 instance(s) instead of 3."]


def test_an_unhealthy_release_is_removed_and_the_live_one_keeps_serving(world):
    world.run("deploy")
    world.go_live("blue")
    before = world.state
    world.set_image("dockerflow-test/app:unhealthy")
    with pytest.raises(FlowError) as caught:
        world.run("deploy")
    message = caught.value.msg
    assert "Release 2 of books-app (green) failed" in message and "Live color blue keeps serving" in message
    assert "HEALTHCHECK failed: GET /health: 500" in message and "gave up" in message
    assert caught.value.details["failed_instance"] == "books-app-green-1"
    assert world.running("green") == [] and world.running("blue") == ["books-app-blue-1"]
    assert world.registered() == [service_id_for("books-app-blue-1")]
    assert world.state == before  # nothing recorded


def test_check_mode_predicts_a_deploy_and_touches_nothing(world):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    before, calls = world.state, len(world.consul.calls)
    result = world.run("deploy", check_mode=True, pull="always")
    assert result["changed"] and result["color"] == "green" and "Would deploy release 2" in result["msg"]
    assert result["steps"] == ["would run release 2 as green with 1 instance(s) after pulling"]
    assert world.state == before and world.running("green") == [] and world.backend.pulled == []
    assert not world.consul.sessions and all(call[0] == "kv.get" for call in world.consul.calls[calls:])


def test_without_blue_green_a_release_is_plain_and_live_at_once(world):
    result = world.run("deploy", blue_green=False)
    assert result["color"] == "plain" and world.state["live_color"] == "plain"
    world.set_image("dockerflow-test/app:2")
    again = world.run("deploy", blue_green=False)
    assert again["color"] == "plain" and again["release"] == 2
    # plain releases sit side by side until stop-old
    assert sorted((i.release, i.number) for i in world.backend.list_instances(SERVICE)) == [(1, 1), (2, 2)]


@pytest.mark.parametrize(
    "compose, options, message",
    [
        ("services:\n  app:\n    image: x\n    container_name: fixed\n", {}, "sets container_name"),
        ("services:\n  app:\n    image: x\n    network_mode: host\n", {}, "sets network_mode host: every instance"),
        ("services:\n  app:\n    image: x\n    network_mode: service:db\n  db:\n    image: y\n", {},
         "sets network_mode service:db: every instance of both colors would share"),
        ("services:\n  app:\n    image: x\n    network_mode: none\n    ports: ['8080']\n", {},
         "sets network_mode none and publishes ports"),
        ("services:\n  app:\n    image: x\n", {"side_targets": ["app"]}, "must not name the target"),
        ("services:\n  app:\n    image: x\n", {"side_targets": ["nope"]}, "'nope' is not a service of"),
        ("services:\n  app:\n    image: x\n  db:\n    image: y\n    depends_on: [app]\n", {"side_targets": ["db"]},
         "depends on the target 'app': a cycle"),
        ("services:\n  app:\n    image: x\n    ports: ['8080']\n", {"service_port": 9090},
         "service_port=9090 is not a published container port of app (published: 8080)"),
    ],
)
def test_a_bad_project_is_refused_before_anything_runs(world, compose, options, message):
    (world.tmp_path / "docker-compose.yml").write_text(compose, encoding="utf-8")
    with pytest.raises(FlowError, match=re.escape(message)):
        world.run("deploy", **options)
    assert world.backend.instances == {} and world.consul.kv.entries == {}


def test_a_target_without_ports_runs_unregistered_with_a_warning(world):
    (world.tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    image: x\n", encoding="utf-8")
    result = world.run("deploy")
    assert result["changed"] and world.registered() == []
    assert result["warnings"] == ["app publishes no port: its instances are not registered in Consul."]


def test_service_port_picks_the_registered_port(world):
    compose = "services:\n  app:\n    image: x\n    ports: ['8080', '9090']\n"
    (world.tmp_path / "docker-compose.yml").write_text(compose, encoding="utf-8")
    world.run("deploy", service_port=9090)
    instance = world.backend.list_instances(SERVICE)[0]
    assert world.state["colors"]["blue"]["port"] == "9090/tcp"
    assert world.consul.services[service_id_for(instance.name)]["Port"] == instance.ports["9090/tcp"]


# -- scale ----------------------------------------------------------------------------------


def test_scale_up_copies_a_running_instance_and_registers_the_copies(world):
    world.run("deploy")
    result = world.run("scale", scale="+2")
    assert result["changed"] and result["instances_count"] == 3
    assert world.running("blue") == ["books-app-blue-1", "books-app-blue-2", "books-app-blue-3"]
    assert len(world.registered()) == 3 and world.state["colors"]["blue"]["instances"] == 3


def test_scale_down_removes_the_newest_first_and_deregisters_them(world):
    world.run("deploy", scale="3")
    world.go_live("blue")  # routed: the flow waits for the proxy before stopping
    result = world.run("scale", scale="-2")
    assert result["instances_count"] == 1 and world.running("blue") == ["books-app-blue-1"]
    assert world.registered() == [service_id_for("books-app-blue-1")]
    assert any("waited 0s for the proxy" in step for step in result["steps"])


def test_scale_to_the_current_count_changes_nothing_and_check_mode_predicts(world):
    world.run("deploy", scale="2")
    assert not world.run("scale", scale="2")["changed"]
    predicted = world.run("scale", scale="5", check_mode=True)
    assert predicted["changed"] and predicted["diff"]["after"]["instances"] == {"blue": {"running": 2, "stopped": 0}}
    assert len(world.running("blue")) == 2 and world.state["colors"]["blue"]["instances"] == 2


def test_a_failed_scale_up_removes_the_new_instances(world, monkeypatch):
    world.run("deploy")
    clone = world.backend.clone_instances

    def unhealthy_clones(template, numbers):
        made = clone(template, numbers)
        for instance in made:
            instance.health = "unhealthy"
        return made

    monkeypatch.setattr(world.backend, "clone_instances", unhealthy_clones)
    with pytest.raises(FlowError, match=r"Scaling books-app \(blue\) to 3 failed: .* The new instances were removed; 1 keep"):
        world.run("scale", scale="+2")
    assert world.running("blue") == ["books-app-blue-1"] and world.state["colors"]["blue"]["instances"] == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"scale": None}, "scale is required"),
        ({"scale": "+1", "color": "red"}, "color='red' is not valid"),
        ({"scale": "+1"}, "has no release to scale; deploy it first"),
        ({"scale": "+1", "color": "green"}, "has no green instances to scale"),
    ],
)
def test_scale_refuses_what_it_cannot_do(world, options, message):
    if options.get("color") == "green":
        world.run("deploy")
    with pytest.raises(FlowError, match=message):
        world.run("scale", **options)


def test_a_failed_undo_is_a_warning_not_a_second_error(world):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:unhealthy")
    world.backend.fail_remove = True
    flow = world.flow()
    with pytest.raises(FlowError, match=r"Release 2 .* failed"):
        flow.deploy()
    assert flow.warnings == ["Undoing the new instances was incomplete: the engine refused to remove books-app-green-1"]


# -- stop-old -------------------------------------------------------------------------------


def deployed_twice(world):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.go_live("green")


def test_stop_old_stops_the_old_color_and_keeps_it_for_a_rollback(world):
    deployed_twice(world)
    drained = []
    flow = world.flow()
    flow.wait_for_drain = lambda backends: drained.append(backends) or 0.25
    result = flow.stop_old()
    assert result["changed"] and result["stopped"] == ["books-app-blue-1"] and result["removed"] == []
    assert world.running("blue") == [] and "books-app-blue-1" in [i.name for i in world.backend.list_instances(SERVICE)]
    assert world.registered() == [service_id_for("books-app-green-1")]
    assert world.state["colors"]["blue"]["state"] == "stopped"
    assert drained == [["be_books-app_blue"]], "the old color's backend, which the live worker may still serve"
    assert "the proxy drained requests to the old release in 0.2s" in result["steps"]
    again = world.run("stop_old")
    assert not again["changed"] and again["msg"] == "No old release of books-app is running."


def test_stop_old_removes_releases_beyond_keep_releases(world):
    deployed_twice(world)
    result = world.run("stop_old", keep_releases=0)
    assert result["removed"] == ["books-app-blue-1"] and world.backend.list_instances(SERVICE)[0].color == "green"


def test_stop_old_of_an_unrouted_service_promotes_the_newest_release(world):
    world.run("deploy")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    result = world.run("stop_old")
    assert world.state["live_color"] == "green" and result["stopped"] == ["books-app-blue-1"]
    assert "green is now the live color of books-app" in result["steps"]


def test_stop_old_check_mode_and_refusals(world):
    with pytest.raises(FlowError, match="keep_releases=-1 is not valid"):
        world.run("stop_old", keep_releases=-1)
    with pytest.raises(FlowError, match="has no release; nothing to stop"):
        world.run("stop_old")
    deployed_twice(world)
    predicted = world.run("stop_old", check_mode=True)
    assert predicted["changed"] and predicted["stopped"] == ["books-app-blue-1"] and world.running("blue")


def test_stop_old_refuses_to_promote_a_release_that_does_not_run(world):
    world.run("deploy")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.backend.stop([i for i in world.backend.list_instances(SERVICE) if i.color == "green"])
    with pytest.raises(FlowError, match=r"Release 2 \(green\) of books-app has no running instance"):
        world.run("stop_old")
    assert world.running("blue") == ["books-app-blue-1"]


def route(world, color, max_servers=None):
    """What flow_proxy records when it routes the service to ``color`` (slots as it records them)."""
    routes = {"paths": ["/books"], "color": color, "proxy": "dockerflow-proxy"}
    if max_servers is not None:
        routes["max_servers"] = max_servers
    world.flow().store.update(SERVICE, lambda doc: doc.update(live_color=color, routes=routes))


def test_a_plain_deploy_on_a_routed_service_leaves_live_to_the_switch(world):
    # Hole 6 of issue 10: blue_green=false took live_color=plain at deploy time while the proxy
    # still routed blue, and a stop-old before flow_proxy then stopped blue: no server left.
    world.run("deploy")
    route(world, "blue")
    world.set_image("dockerflow-test/app:2")
    predicted = world.run("deploy", blue_green=False, check_mode=True)
    assert predicted["live_color"] == "blue" and predicted["deployed_color"] == "plain"
    deployed = world.run("deploy", blue_green=False)
    assert (deployed["color"], deployed["live_color"]) == ("plain", "blue")
    assert (world.state["live_color"], world.state["deployed_color"]) == ("blue", "plain")
    stopped = world.run("stop_old")
    assert stopped["stopped"] == ["books-app-plain-1"] and world.running("blue") == ["books-app-blue-1"]
    assert world.registered() == [service_id_for("books-app-blue-1")]


def test_stop_old_refuses_when_the_state_calls_live_another_color_than_the_route(world):
    # What the old plain deploy left behind: live_color=plain while the route records blue.
    world.run("deploy")
    route(world, "blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy", blue_green=False)
    world.flow().store.update(SERVICE, lambda doc: doc.update(live_color="plain"))
    with pytest.raises(FlowError) as caught:
        world.run("stop_old")
    assert caught.value.msg == ("The proxy routes books-app to blue, but its state calls plain live; nothing was "
                                "stopped. Switch with flow_proxy first (color=blue to keep serving blue).")
    assert world.running("blue") == ["books-app-blue-1"] and world.running("plain") == ["books-app-plain-1"]


def test_scale_up_above_max_instances_is_refused_and_removes_nothing(world):
    # Hole 5 of issue 10: +1 of 5 with max_instances=3 scaled down to 3.
    world.run("deploy", scale="5")
    with pytest.raises(FlowError) as caught:
        world.run("scale", scale="+1", max_instances=3)
    assert caught.value.msg == "scale=+1 would run 6 instance(s) (5 run now), more than max_instances=3."
    assert len(world.running("blue")) == 5 and world.state["colors"]["blue"]["instances"] == 5
    with pytest.raises(FlowError, match=r"^scale=4 would run 4 instance\(s\) \(5 run now\), more than max_instances=3\.$"):
        world.run("scale", scale="4", max_instances=3)
    assert world.run("scale", scale="3", max_instances=3)["instances_count"] == 3


def test_a_routed_service_does_not_outgrow_the_slots_the_proxy_recorded(world):
    # Hole 7 of issue 10: instances beyond the proxy's server-template slots ran and got no request.
    world.run("deploy", scale="3")
    route(world, "blue", max_servers=4)
    before = world.state
    with pytest.raises(FlowError) as caught:
        world.run("scale", scale="+2")
    assert caught.value.msg == (
        "scale=+2 would run 5 blue instance(s) of books-app, but proxy dockerflow-proxy routes to at most 4 of one color "
        "(proxy_max_servers, recorded when flow_proxy last routed books-app); route it again with a larger "
        "proxy_max_servers first.")
    with pytest.raises(FlowError, match=r"^scale=5 would run 5 blue instance"):
        world.run("scale", scale="5", check_mode=True)
    world.set_image("dockerflow-test/app:2")
    with pytest.raises(FlowError, match=r"^scale=6 would run 6 green instance"):
        world.run("deploy", scale="6")
    assert world.state == before and world.running("green") == [] and len(world.running("blue")) == 3
    assert world.run("scale", scale="+1")["instances_count"] == 4


def test_a_route_without_recorded_slots_has_the_32_of_older_versions(world):
    world.run("deploy", scale="3")
    route(world, "blue")  # recorded before proxy_max_servers existed: those versions rendered 32
    with pytest.raises(FlowError, match=r"^scale=33 would run 33 blue instance\(s\) of books-app, but proxy "
                                        r"dockerflow-proxy routes to at most 32 of one color"):
        world.run("scale", scale="33")
    world.set_image("dockerflow-test/app:2")
    with pytest.raises(FlowError, match=r"^scale=\+30 would run 33 green instance"):
        world.run("deploy", scale="+30")
    assert len(world.running("blue")) == 3 and world.running("green") == []


def test_scaling_down_but_still_beyond_the_slots_warns(world):
    world.run("deploy", scale="6")
    route(world, "blue", max_servers=4)
    result = world.run("scale", scale="-1")
    assert result["instances_count"] == 5
    assert result["warnings"] == ["scale=-1 leaves 5 blue instance(s) of books-app, more than the 4 proxy "
                                  "dockerflow-proxy routes to (proxy_max_servers): 1 get no request."]


# -- rollback -------------------------------------------------------------------------------


def test_rollback_starts_the_kept_release_again_and_records_it(world):
    deployed_twice(world)
    world.run("stop_old")
    result = world.run("rollback")
    assert result["changed"] and (result["color"], result["release"]) == ("blue", 1)
    assert world.running("blue") == ["books-app-blue-1"] and world.running("green") == ["books-app-green-1"]
    state = world.state
    assert state["deployed_color"] == "blue" and state["live_color"] == "green"  # the proxy switches next
    assert state["releases"][-1]["rollback_from"] == "green" and state["colors"]["blue"]["state"] == "running"
    again = world.run("rollback")
    assert not again["changed"] and "already runs" in again["msg"]


def test_rollback_check_mode_and_refusals(world):
    with pytest.raises(FlowError, match="has no blue-green release to roll back from"):
        world.run("rollback")
    world.run("deploy")
    with pytest.raises(FlowError, match="has no kept green release to roll back to"):
        world.run("rollback")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.go_live("green")
    world.run("stop_old")
    predicted = world.run("rollback", check_mode=True)
    assert predicted["changed"] and "Would start release 1 (blue)" in predicted["msg"] and world.running("blue") == []


def test_a_failed_rollback_stops_the_release_again(world, monkeypatch):
    deployed_twice(world)
    world.run("stop_old")
    start = world.backend.start

    def start_unhealthy(instances):
        started = start(instances)
        for instance in started:
            instance.health = "unhealthy"
        return started

    monkeypatch.setattr(world.backend, "start", start_unhealthy)
    with pytest.raises(FlowError, match=r"Rollback of books-app to blue failed: .* green keeps serving"):
        world.run("rollback")
    assert world.running("blue") == [] and world.state["deployed_color"] == "green"


# -- info -----------------------------------------------------------------------------------


def test_info_reports_colors_instances_consul_health_and_history(world):
    assert world.run("info")["exists"] is False
    deployed_twice(world)
    world.consul.services[service_id_for("books-app-green-1")]["Status"] = "critical"
    info = world.run("info")
    assert info["exists"] and (info["live_color"], info["deployed_color"]) == ("green", "green")
    assert [m["consul"] for m in info["colors"]["green"]["members"]] == ["critical"]
    assert info["colors"]["blue"]["release"] == 1 and [r["release"] for r in info["releases"]] == [1, 2]
    assert info["routes"] == {"paths": ["/books"]}


# -- instances registered by the registrators of their nodes (Swarm tasks) -------------------


class RegistratorBackend(FakeBackend):
    """A backend whose instances the node's registrator registers (as the Swarm backend's are)."""

    registration_owner = "registrator"

    def __init__(self, consul, register=True):
        super().__init__()
        self.consul, self.register = consul, register

    def run_instances(self, *args, **kwargs):
        made = super().run_instances(*args, **kwargs)
        for instance in made:
            if self.register:
                self.consul.agent.service.register(SERVICE, service_id_for(instance.name), check={"Status": "passing"})
        return made

    def retire(self, instances, timeout=None):
        gone = super().retire(instances, timeout=timeout)
        for instance in gone:
            self.consul.agent.service.deregister(service_id_for(instance.name))
        return gone


def test_registrator_owned_instances_are_awaited_in_consul_not_registered_by_the_flow(world):
    world.backend = RegistratorBackend(world.consul)
    result = world.run("deploy", scale="2")
    assert any("Consul lists 2 new instance(s) passing" in step for step in result["steps"])
    assert [call for call in world.consul.calls if call[0] == "register"] == [
        ("register", service_id_for("books-app-blue-1")), ("register", service_id_for("books-app-blue-2"))]
    scaled = world.run("scale", scale="-1")
    assert scaled["instances_count"] == 1 and scaled["warnings"] == []


def test_a_registration_that_never_comes_fails_the_deploy_with_what_to_check(world):
    world.backend = RegistratorBackend(world.consul, register=False)
    expected = r"Consul does not list books-app-blue-1 passing after 0s .*role dockerflow\.flow\.registrator"
    with pytest.raises(FlowError, match=expected):
        world.run("deploy", health_timeout=0)
    assert world.backend.instances == {}


def test_a_deregistration_that_never_comes_is_a_warning(world):
    world.backend = RegistratorBackend(world.consul)
    world.run("deploy", scale="2")
    world.backend.retire = FakeBackend.retire.__get__(world.backend)  # the registrator is gone
    scaled = world.run("scale", scale="-1")
    assert scaled["warnings"] and "Consul still lists dockerflow-books-app-blue-2 as passing" in scaled["warnings"][0]


# -- the lock -------------------------------------------------------------------------------


def test_a_step_takes_the_service_lock_and_releases_it(world):
    world.run("deploy")
    entry = world.consul.kv.entries[lock_key(SERVICE)]
    assert entry["Session"] is None and world.consul.sessions == {}
    assert json.loads(entry["Value"] or b"{}") == {}  # a clean release empties the holder record


def test_a_lock_another_run_holds_makes_the_step_wait_then_give_up(world):
    other = world.consul.session.create()
    world.consul.kv.put(lock_key(SERVICE), json.dumps({"holder": "bob@ci", "operation": "deploy", "pid": 7}),
                        acquire=other)
    flow = world.flow(lock_timeout=0.2)
    with pytest.raises(FlowError, match=r"Service books-app is locked by bob@ci \(deploy, pid 7, since \?, session "):
        flow.deploy()
    assert world.backend.instances == {}
    assert [step for step in flow.steps if step.startswith("waiting for the lock")] == [
        "waiting for the lock of books-app held by bob@ci (deploy, pid 7, since ?, session %s)" % other]


def test_a_lock_left_by_a_killed_run_is_reported_by_the_run_that_takes_it(world):
    world.consul.kv.write(lock_key(SERVICE), json.dumps({"holder": "bob@ci", "operation": "scale", "pid": 9,
                                                         "since": "earlier"}))
    result = world.run("deploy")
    assert result["changed"]
    assert result["warnings"] == [
        "The lock of books-app was left by bob@ci (scale, pid 9, since earlier), which ended without releasing it "
        "(killed, or cut off from Consul); it expired and this run took it after waiting 0s."
    ]


def test_lock_delay_after_a_holder_died_is_named_when_the_wait_runs_out():
    consul = FakeConsulAPI()
    client = FakeConsulClient(consul)
    consul.kv.write(lock_key(SERVICE), json.dumps({"holder": "bob@ci", "operation": "deploy", "pid": 3}))
    consul.kv.put = lambda *args, **kwargs: False  # Consul refuses every acquire during lock-delay
    with pytest.raises(FlowError, match=r"locked by bob@ci .* which ended without releasing it \(Consul's lock-delay"):
        ServiceLock(client, SERVICE, timeout=0).__enter__()
    assert consul.sessions == {}  # the failed attempt destroyed its session


def test_check_mode_takes_no_lock(world):
    world.run("deploy", check_mode=True)
    assert lock_key(SERVICE) not in world.consul.kv.entries and world.consul.sessions == {}


def test_the_probe_of_copies_follows_what_the_release_recorded():
    flow = Flow(FakeBackend(), FakeConsulClient(), FlowSettings(service=SERVICE, service_address="10.0.0.5"))
    template = FakeBackend()._new(SERVICE, "blue", 1, 1, "x", "h", ["8080/tcp"])
    assert step_instances.clone_probe(flow, template, "8080/tcp", "/health") == Probe("http", "10.0.0.5", "/health", "8080/tcp")
    assert step_instances.clone_probe(flow, template, "8080/tcp", None).kind == "docker"
    template.health = None
    assert step_instances.clone_probe(flow, template, "8080/tcp", None) == Probe("tcp", "10.0.0.5", None, "8080/tcp")
    assert step_instances.clone_probe(flow, template, None, None).kind == "running"


# -- a lock lost in the middle of a step ----------------------------------------------------------


def steal_the_lock(world):
    """What a Consul outage longer than the TTL does (or `PUT /v1/session/destroy`): the run's session goes, and
    another run takes the lock. Returns the other run's session."""
    world.consul.session.destroy(world.consul.kv.entries[lock_key(SERVICE)]["Session"])
    other = world.consul.session.create()
    assert world.consul.kv.put(lock_key(SERVICE), json.dumps({"holder": "bob@ci", "operation": "deploy", "pid": 7}),
                               acquire=other)
    return other


def lose_the_lock_at(monkeypatch, world, step):
    stolen = []
    monkeypatch.setattr(Flow, "checkpoint", lambda self, name: stolen.append(steal_the_lock(world)) if name == step else None)
    return stolen


def test_a_deploy_that_lost_its_lock_removes_only_its_own_instances_and_writes_nothing(world, monkeypatch):
    world.run("deploy", scale="2")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    state, registered = world.state, world.registered()
    stolen = lose_the_lock_at(monkeypatch, world, "deploy:healthy")
    with pytest.raises(FlowError) as info:
        world.run("deploy")
    assert re.match(
        r"Release 2 of books-app \(green\) failed: Lost the lock of books-app \(Consul key dockerflow/locks/books-app, "
        r"session \S+\) before registering the new instances: another session holds the key now\. It was last confirmed "
        r"at \S+Z, \d+s before\. Another run may hold it now: bob@ci \(deploy, pid 7, since \?, session %s\); "
        r"this run stopped\. Its new instances were removed\. Live color blue keeps serving\.$" % stolen[0],
        str(info.value)), str(info.value)
    assert world.running("green") == [] and world.running("blue") == ["books-app-blue-1", "books-app-blue-2"]
    assert sorted(world.backend.removed) == ["books-app-green-1", "books-app-green-2"]
    assert world.state == state and world.registered() == registered
    assert world.consul.kv.entries[lock_key(SERVICE)]["Session"] == stolen[0], "the other run's lock is left alone"


def test_a_scale_whose_lock_went_during_the_health_wait_writes_no_count(world, monkeypatch):
    """Lost after the last confirmation: the state write itself (one transaction with the session check) refuses."""
    world.run("deploy", scale="1")
    wait_healthy = step_instances.wait_healthy

    def slow_health_wait(*args, **kwargs):
        steal_the_lock(world)
        return wait_healthy(*args, **kwargs)

    monkeypatch.setattr(step_instances, "wait_healthy", slow_health_wait)
    state = world.state
    with pytest.raises(FlowError, match=r"^Scaling books-app \(blue\) to 3 failed: Lost the lock of books-app .* before "
                                        r"writing the state of books-app: .* The new instances were removed; 1 keep serving\.$"):
        world.run("scale", scale="3")
    assert world.running("blue") == ["books-app-blue-1"] and world.state == state
    assert world.registered() == [service_id_for("books-app-blue-1")]
    assert ("txn", (lock_key(SERVICE), "dockerflow/services/books-app")) in world.consul.calls


def test_stop_old_that_lost_its_lock_stops_nothing(world, monkeypatch):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.go_live("green")
    state = world.state
    lose_the_lock_at(monkeypatch, world, "stop-old:deregistered")
    with pytest.raises(FlowError, match=r"^Lost the lock of books-app .* before stopping books-app-blue-1: another session"):
        world.run("stop_old")
    assert world.running("blue") == ["books-app-blue-1"] and world.backend.stopped == [] and world.state == state


def test_a_rollback_that_lost_its_lock_writes_nothing_and_stops_nothing_again(world, monkeypatch):
    world.run("deploy")
    world.go_live("blue")
    world.set_image("dockerflow-test/app:2")
    world.run("deploy")
    world.go_live("green")
    world.run("stop_old")
    state = world.state
    wait_healthy = step_instances.wait_healthy
    monkeypatch.setattr(step_instances, "wait_healthy",
                        lambda *args, **kwargs: steal_the_lock(world) and wait_healthy(*args, **kwargs))
    with pytest.raises(FlowError, match=r"^Rollback of books-app to blue left the instances it started running: Lost the "
                                        r"lock of books-app .* before writing the state of books-app"):
        world.run("rollback")
    assert world.running("blue") == ["books-app-blue-1"] and world.state == state
