# -*- coding: utf-8 -*-
"""The release's sequence (steps.release): which step runs after which, with what, and what a failure or check
mode stops. The steps are stand-ins that record their calls; tests/integration/test_release.py runs the real ones
against the engine, Consul and HAProxy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.release import Release

SERVICE = "books-app"


def outcome(changed, msg, **facts):
    return dict({"changed": changed, "msg": msg, "service": SERVICE, "diff": {"before": msg, "after": msg}}, **facts)


DEPLOYED = outcome(True, "Deployed release 2 of books-app as green.", color="green", release=2, live_color="blue",
                   deployed_color="green", instances=[{"name": "books-app-green-1"}])
SWITCHED = outcome(True, "The proxy routes books-app to green (was blue).", color="green", live_color="green",
                   previous_color="blue", servers_up=1, routes={"paths": ["/books"], "color": "green"})
STOPPED = outcome(True, "Stopped 1 and removed 0 old instance(s) of books-app; live color green.", live_color="green",
                  stopped=["books-app-blue-1"], removed=[])


class Steps:
    """A flow whose steps record their calls in ``calls`` and return (or raise) what they were given."""

    def __init__(self, deploy=None, switch=None, stop_old=None, check_route=None, check_mode=False):
        """Each step's outcome (a result, or a FlowError it raises); by default the release of green over blue."""
        self.outcomes = {"check_route": check_route, "deploy": deploy or DEPLOYED, "switch": switch or SWITCHED,
                         "stop_old": stop_old or STOPPED}
        self.calls = []
        self.flow = SimpleNamespace(settings=SimpleNamespace(service=SERVICE), check_mode=check_mode, steps=[],
                                    deploy=lambda: self._step("deploy"), stop_old=lambda: self._step("stop_old"))
        self.flow.progress = self.flow.steps.append
        ticks = iter(range(100))
        self.release = Release(self.flow, lambda color: self._step("switch", color),
                               lambda: self._step("check_route"), clock=lambda: float(next(ticks)))

    def _step(self, name, *args):
        self.calls.append((name, *args))
        self.flow.steps.append(name)
        given = self.outcomes[name]
        if isinstance(given, Exception):
            raise given
        return given


def test_the_route_is_checked_then_deploy_switch_to_its_color_and_stop_old_in_order():
    steps = Steps()
    result = steps.release.run()
    assert steps.calls == [("check_route",), ("deploy",), ("switch", "green"), ("stop_old",)]
    assert result["changed"] is True
    assert (result["color"], result["release"], result["previous_color"], result["live_color"]) == (
        "green", 2, "blue", "green")
    assert result["instances"] == DEPLOYED["instances"] and result["stopped"] == ["books-app-blue-1"]
    assert result["servers_up"] == 1 and result["routes"]["color"] == "green"
    assert result["steps"] == ["check_route", "deploy", "switch", "stop_old"]
    assert result["timings"] == {"deploy": 1.0, "proxy": 1.0, "stop_old": 1.0}
    assert result["msg"] == " ".join(step["msg"] for step in (DEPLOYED, SWITCHED, STOPPED))
    assert [diff["before"] for diff in result["diff"]] == [DEPLOYED["msg"], SWITCHED["msg"], STOPPED["msg"]]


def test_a_release_that_changes_nothing_reports_no_change():
    steps = Steps(deploy=dict(DEPLOYED, changed=False, live_color="green"), switch=dict(SWITCHED, changed=False),
                  stop_old=dict(STOPPED, changed=False, stopped=[]))
    result = steps.release.run()
    assert result["changed"] is False and result["stopped"] == []
    assert [call[0] for call in steps.calls] == ["check_route", "deploy", "switch", "stop_old"]


def test_a_refused_route_stops_the_release_before_the_deploy():
    steps = Steps(check_route=FlowError("service_path or service_domain is required to route books-app."))
    with pytest.raises(FlowError, match=r"^service_path or service_domain is required"):
        steps.release.run()
    assert steps.calls == [("check_route",)]


def test_a_failed_deploy_fails_with_its_own_message_and_nothing_follows():
    failure = FlowError("Release 2 of books-app (green) failed: unhealthy. Live color blue keeps serving.",
                        logs=["boom"])
    steps = Steps(deploy=failure)
    with pytest.raises(FlowError) as raised:
        steps.release.run()
    assert raised.value is failure
    assert [call[0] for call in steps.calls] == ["check_route", "deploy"]


def test_a_failed_switch_says_the_release_stopped_after_the_deploy_and_nothing_is_stopped():
    steps = Steps(switch=FlowError("No instance of books-app (green) passes its Consul health check; not switching. "
                                   "Live color blue keeps serving.", haproxy_output=["x"]))
    with pytest.raises(FlowError) as raised:
        steps.release.run()
    assert raised.value.msg == (
        "No instance of books-app (green) passes its Consul health check; not switching. Live color blue keeps "
        "serving. The release stopped after the deploy: release 2 (green) of books-app runs and is not live; "
        "running flow_release again retries the switch.")
    assert [call[0] for call in steps.calls] == ["check_route", "deploy", "switch"]
    details = raised.value.details
    assert details["haproxy_output"] == ["x"] and (details["color"], details["release"]) == ("green", 2)
    assert details["timings"] == {"deploy": 1.0, "proxy": 1.0}
    assert details["steps"] == ["check_route", "deploy", "switch"]


def test_a_failed_stop_old_says_the_release_stopped_after_the_switch():
    steps = Steps(stop_old=FlowError("The lock of books-app is held by someone."))
    with pytest.raises(FlowError, match="someone. The release stopped after the switch: green is live, and the old "
                                        r"release was not stopped \(run flow_stop_old\).$"):
        steps.release.run()
    assert [call[0] for call in steps.calls] == ["check_route", "deploy", "switch", "stop_old"]


def test_check_mode_describes_the_switch_and_stop_old_after_a_deploy_that_would_run_a_release():
    steps = Steps(check_mode=True)
    result = steps.release.run()
    assert [call[0] for call in steps.calls] == ["check_route", "deploy"], "they would read the state before the deploy"
    assert result["changed"] is True
    assert (result["color"], result["live_color"], result["previous_color"]) == ("green", "green", "blue")
    assert result["steps"][-2:] == ["would route books-app to green through the proxy and make it live",
                                    "would then stop the releases of books-app that are not green"]
    assert "stopped" not in result and result["timings"] == {"deploy": 1.0}


def test_check_mode_runs_the_switch_after_an_unchanged_deploy_and_describes_stop_old_after_a_switch():
    steps = Steps(deploy=dict(DEPLOYED, changed=False), check_mode=True)
    result = steps.release.run()
    assert [call[0] for call in steps.calls] == ["check_route", "deploy", "switch"]
    assert result["changed"] is True and result["live_color"] == "green"
    assert result["steps"][-1] == "would then stop the releases of books-app that are not green"


def test_check_mode_runs_stop_old_when_the_proxy_already_serves_the_release():
    steps = Steps(deploy=dict(DEPLOYED, changed=False), switch=dict(SWITCHED, changed=False), check_mode=True)
    result = steps.release.run()
    assert [call[0] for call in steps.calls] == ["check_route", "deploy", "switch", "stop_old"]
    assert result["stopped"] == ["books-app-blue-1"]


def test_the_diffs_are_one_list_when_the_switch_gave_several():
    certificates = {"before": "certificates before", "after": "certificates after"}
    steps = Steps(switch=dict(SWITCHED, diff=[SWITCHED["diff"], certificates]))
    assert steps.release.run()["diff"][1:3] == [SWITCHED["diff"], certificates]
