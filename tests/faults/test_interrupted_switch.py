# -*- coding: utf-8 -*-
"""A proxy switch interrupted after the new configuration runs, and a switch to a color that just died.

Killed at ``proxy:activated`` (the new worker serves the target, the state not committed yet), by SIGKILL
and by SIGTERM (what an AWX job cancel sends): the proxy serves a color the state does not call live yet,
so the steps that cannot ask the proxy (flow_deploy) must replace neither color, and the next step that can
(flow_stop_old here: the one that would stop the served color) finishes the switch before it acts.
A target whose instances stop right before the activation: the switch is refused, the previous
configuration restored, and the failed requests are counted.
"""

from __future__ import annotations

import signal
import time

import pytest

from conftest import (
    APP_V1,
    APP_V2,
    BackgroundRun,
    assert_consistent,
    flow_params,
    report,
    rerun,
    routed_service,
)

PATH = "/switch"
COUNT = 2
PARAMS = flow_params(PATH, COUNT)


def served(project, requests=10):
    """The colors that answer ``requests`` GETs through the proxy (a status code for an answer without one)."""
    answers = [project.proxy.get(PATH) for _request in range(requests)]
    return {body["color"] if isinstance(body, dict) else status for status, body in answers}


def next_release(project):
    """The live color, and the other color deployed with the other image (not switched to)."""
    live = project.state()["live_color"]
    image = APP_V2 if project.running(live)[0].image.tags[0] == APP_V1 else APP_V1
    project.set_image(image)
    project.run("flow_deploy", PARAMS["flow_deploy"])
    return live, "green" if live == "blue" else "blue"


@pytest.fixture(scope="module", name="routed_service")
def switching_service(tmp_path_factory, docker_client, consul_agent):
    yield from routed_service(tmp_path_factory, docker_client, "switch", PARAMS)


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_switch_killed_after_activating_is_finished_before_any_step_acts(routed_service, loads, signal_number):
    project = routed_service
    load = loads(project.proxy, PATH)
    live, target = next_release(project)
    paused = BackgroundRun(project, "flow_proxy", PARAMS["flow_proxy"], pause_at="proxy:activated")
    paused.wait_paused()
    paused.kill(signal_number)
    killed_at = time.monotonic()
    assert paused.module_outlived is False, "the module must end on %s" % signal.Signals(signal_number).name
    assert project.state()["live_color"] == live and served(project) == {target}, "served before the commit"

    # flow_deploy cannot ask the proxy: the color it would replace may be served, so it refuses.
    refused = project.run("flow_deploy", dict(PARAMS["flow_deploy"], force=True), expect_failure=True)
    assert "deploy would replace %s, refused" % target in refused["msg"], refused["msg"]
    assert "Run flow_proxy (or flow_proxy state=synced) to finish the interrupted switch." in refused["msg"]
    assert project.state()["pending_switch"]["color"] == target
    # flow_stop_old asks the proxy: its running worker reports the switch's generation, so it is finished first.
    stopped = project.run("flow_stop_old", PARAMS["flow_stop_old"])
    settled_s = time.monotonic() - killed_at
    assert served(project) == {target} and all(name.split("-")[-2] == live for name in stopped["stopped"]), stopped
    assert stopped["live_color"] == target and stopped["reconciled"][project.service]["outcome"] == "finished", stopped
    assert any(w.startswith("Finished the interrupted switch of %s to %s" % (project.service, target))
               for w in stopped.get("warnings", [])), stopped.get("warnings")
    assert "pending_switch" not in project.state()

    results, rerun_s, summary = rerun(project, PARAMS, load)
    facts = assert_consistent(project, COUNT)
    assert facts["live"] == target and served(project) == {target}
    assert not any(result["changed"] for result in results), [result["msg"] for result in results]
    assert summary["failed"] == 0, summary
    report("killed (%s) at proxy:activated" % signal.Signals(signal_number).name, summary, True, live=facts["live"],
           served_after_kill=target, state_after_kill="%s+pending %s" % (live, target), deploy="refused",
           settled_by="flow_stop_old", settled_after_s=round(settled_s, 1), rerun_s=round(rerun_s, 1))


def test_a_target_that_dies_right_before_the_switch_is_refused_and_the_rerun_converges(routed_service, loads):
    project = routed_service
    load = loads(project.proxy, PATH)
    live, target = next_release(project)
    paused = BackgroundRun(project, "flow_proxy", dict(PARAMS["flow_proxy"], switch_timeout=8), pause_at="proxy:switch")
    paused.wait_paused()  # every check before the activation passed: Consul and the running worker call it UP
    stopped_at = time.time()
    for container in project.running(target):
        container.stop(timeout=1)
    paused.resume()
    failed = paused.result(expect_failure=True)
    refused_at = time.time()
    # A switch of color alone swaps the worker's map (live_map) once the target passed a check that ran since the
    # intent: it fails the check, and nothing was activated.
    assert failed["msg"].endswith("passed a check within 3s of the switch. Not switching. Live color %s keeps serving."
                                  % live), failed["msg"]
    state = project.state()
    assert state["live_color"] == live and "pending_switch" not in state and served(project) == {live}

    # the dead release is deployed again (it is not served), switched to, and the old one stopped
    _results, rerun_s, summary = rerun(project, PARAMS, load)
    facts = assert_consistent(project, COUNT)
    assert served(project) == {facts["live"]} == {target}
    # Not a count bound: the refusal took 4.5 s alone and 11-13 s inside make test (cause not found yet),
    # and the load is paced, so a count only restates how long that took. What must hold: no request sent more than
    # a second after the refusal fails. Counted once the load stopped: a request sent to the dead color can end
    # seconds later (HAProxy retries a refused connection after 1 s), after a count taken at once.
    window_failures = load.failures_between(stopped_at, refused_at + 1)
    assert summary["failed"] == window_failures, "failures only while the dead target was tried: %s" % summary
    report("dead target at switch time", summary, True, live=facts["live"], refused_after_s=round(refused_at - stopped_at, 1),
           failing_for_s=load.failure_window(), rerun_s=round(rerun_s, 1))
