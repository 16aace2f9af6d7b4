# -*- coding: utf-8 -*-
"""A flow_canary killed (SIGKILL: nothing cleans up, as when an AWX job's node dies) during a step's dwell, under
load: the proxy keeps the share recorded in Consul, no request fails, the killed run's lock expires, and the next
run reports it, starts its schedule over from the first step, and promotes the canary."""

from __future__ import annotations

from conftest import APP_ONLY, APP_V2, FAST, BackgroundRun, report

PATH = "/killed-canary"


def green_share(proxy, requests=200):
    answers = [proxy.get(PATH) for _request in range(requests)]
    assert all(status == 200 for status, _body in answers), [a for a in answers if a[0] != 200][:3]
    return sum(body["color"] == "green" for _status, body in answers) / requests


def test_a_canary_killed_mid_step_keeps_its_share_and_the_next_run_starts_over(make_project, proxy, loads):
    project = make_project(APP_ONLY)
    project.proxy = proxy
    project.run("flow_deploy", dict(FAST, health_path="/health"))
    project.run("flow_proxy", dict(FAST, service_path=[PATH]))
    load = loads(proxy, PATH)
    project.set_image(APP_V2)
    project.run("flow_deploy", dict(FAST, health_path="/health"))

    killed = BackgroundRun(project, "flow_canary", {"canary_steps": [20, 100], "canary_dwell": "5m"},
                           pause_at="canary:dwell")
    killed.wait_paused()
    killed.kill()
    assert project.state()["routes"]["canary"] == {"color": "green", "weight": 20}
    share = green_share(proxy)
    assert 0.1 <= share <= 0.3, "the killed run's 20 %% stays: %.2f" % share

    rerun = project.run("flow_canary", dict(FAST, canary_steps=[50, 100], canary_dwell="2s"))
    assert rerun["outcome"] == "promoted" and [step["weight"] for step in rerun["canary_steps"]] == [50, 100]
    assert any("without releasing it" in warning for warning in rerun.get("warnings", [])), rerun.get("warnings")
    assert green_share(proxy, 20) == 1.0
    summary = load.stop()
    assert summary["failed"] == 0, summary
    report("killed mid-canary", summary, True, share_kept=round(share, 2), live="green")
