# -*- coding: utf-8 -*-
"""The deploying process killed (SIGKILL, nothing cleans up) at each step of a flow, under load.

One routed service walks through the four kills, a new release each (app:1 and app:2 in turn):
deploy, proxy, stop-old run in order, one of them is killed at its step, then the whole flow
runs again. The live release must serve throughout, and the rerun must converge to one live
color with the right count, reporting the lock the killed run left.
"""

from __future__ import annotations

import re

import pytest

from conftest import APP_V1, APP_V2, FLOW, BackgroundRun, assert_consistent, flow_params, report, rerun, routed_service

PATH = "/killed"
COUNT = 2
PARAMS = flow_params(PATH, COUNT)
KILL_POINTS = [
    ("flow_deploy", "deploy:started"),  # the new containers run, nothing else happened
    ("flow_deploy", "deploy:healthy"),  # healthy, not registered in Consul, no state written
    ("flow_proxy", "proxy:switch"),  # deployed and recorded; the proxy not switched yet
    ("flow_stop_old", "stop-old:deregistered"),  # switched; the old color deregistered but still running
]


@pytest.fixture(scope="module", name="routed_service")
def killed_service(tmp_path_factory, docker_client, consul_agent):
    yield from routed_service(tmp_path_factory, docker_client, "killed", PARAMS)


@pytest.mark.parametrize(("module", "step"), KILL_POINTS, ids=[step for _module, step in KILL_POINTS])
def test_a_killed_run_leaves_the_live_release_serving_and_a_rerun_converges(routed_service, loads, module, step):
    project = routed_service
    load = loads(project.proxy, PATH)
    live = project.state()["live_color"]
    image = APP_V2 if project.running(live)[0].image.tags[0] == APP_V1 else APP_V1
    project.set_image(image)
    for earlier in FLOW[: FLOW.index(module)]:
        project.run(earlier, PARAMS[earlier])
    paused = BackgroundRun(project, module, PARAMS[module], pause_at=step)
    paused.wait_paused()
    paused.kill()
    after_kill = project.state()
    if module != "flow_stop_old":
        assert after_kill["live_color"] == live, "a killed %s must not change the live color" % module

    results, rerun_seconds, summary = rerun(project, PARAMS, load)

    # One live color with the right count, serving the new release. Which color: the other one, except when the
    # rerun found the live release unhealthy (Docker health checks time out on a starved machine) and
    # deployed it once more, to the other color again: as converged.
    facts = assert_consistent(project, COUNT)
    status, body = project.proxy.get(PATH)
    assert status == 200 and body["color"] == facts["live"] and body["version"] == image.rsplit(":", 1)[1], (body, facts)
    reported = [w for r in results for w in r.get("warnings", []) if "without releasing it" in w]
    assert reported, "the rerun must report the lock the killed run left: %s" % [r.get("warnings") for r in results]
    waited = max(float(re.search(r"after waiting (\d+)s", w).group(1)) for w in reported)
    assert summary["failed"] == 0, summary
    # A switch killed before its activation left its intent: the rerun's deploy (it cannot ask the proxy, and had
    # nothing to replace) leaves it, its flow_proxy reverts it (the worker never ran it), then switches.
    settled = {module: result["reconciled"][project.service]["outcome"]
               for module, result in zip(FLOW, results, strict=True) if result.get("reconciled")}
    assert settled == ({"flow_deploy": "unchecked", "flow_proxy": "reverted"} if step == "proxy:switch" else {}), settled
    report("killed at %s" % step, summary, True, live=facts["live"], count=COUNT, lock_waited_s=waited,
           rerun_s=round(rerun_seconds, 1), **({"reconciled": "reverted"} if settled else {}))
