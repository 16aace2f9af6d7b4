# -*- coding: utf-8 -*-
"""The flow role through playbooks/flow.yml and playbooks/rollback.yml, run the way a user runs them:
``ansible-playbook playbooks/flow.yml -e flow=deploy,proxy -e project_dir=...`` on the implicit
localhost, against the real engine, the harness's Consul and a per-test HAProxy proxy, with HTTP
checks through the proxy after every step of the original Docker Flow walkthrough.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
import yaml

from conftest import APP_V1, APP_V2, CONSUL_URL, assert_molecule_sequence_ran, free_ports, wait_for
from support.playbook import result_callback_env, written_task

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOW_PLAYBOOK = os.path.join(ROOT, "playbooks", "flow.yml")
ROLLBACK_PLAYBOOK = os.path.join(ROOT, "playbooks", "rollback.yml")
ANSIBLE_PLAYBOOK = os.environ.get("DOCKERFLOW_ANSIBLE_PLAYBOOK", "ansible-playbook")
MOLECULE = os.environ.get("DOCKERFLOW_MOLECULE") or os.path.join(os.path.dirname(sys.executable), "molecule")

# docker-flow.yml of the seed's walkthrough (health_path so the proxy's checks and ours agree).
SEED_FLOW_FILE = {
    "target": "app",
    "side_targets": ["db"],
    "blue_green": True,
    "service_path": ["/demo"],
    "health_path": "/health",
}


class PlaybookRun:
    def __init__(self, completed, results):
        self.rc = completed.returncode
        self.output = completed.stdout + completed.stderr
        self.results = results  # flow_results, when asked for

    def recap_changed(self):
        found = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", self.output)
        assert found, self.output
        return int(found.group(1))


def run_playbook(project, proxy, *args, playbook=FLOW_PLAYBOOK, env=None, project_dir=True, results=False,
                 expect_failure=False, common=True):
    """ansible-playbook PLAYBOOK -e <common options> ARGS, from the project directory, without inventory.

    ``results`` runs the playbook through a wrapper that imports it and then saves the ``flow_results``
    fact, so a test can read what the role exposes. ``common=False`` gives no extra variable but ARGS.
    """
    common = {
        "consul_address": CONSUL_URL,
        "flow_publish_address": "127.0.0.1",
        "flow_health_timeout": 30,
        "flow_lock_timeout": 60,
    } if common else {}
    if common:
        common.update(("flow_" + name, value) for name, value in proxy.options.items())
    if project_dir and common:
        common["project_dir"] = project.dir
    results_path = None
    if results:
        results_path = os.path.join(project.dir, "flow-results-%s.json" % uuid.uuid4().hex[:6])
        wrapper = [
            {"ansible.builtin.import_playbook": playbook},
            {"name": "Keep flow_results", "hosts": "localhost", "gather_facts": False, "tasks": [
                written_task(results_path, "{{ flow_results | to_json }}", name="flow_results"),
            ]},
        ]
        playbook = os.path.join(project.dir, "wrapper-%s.yml" % uuid.uuid4().hex[:6])
        with open(playbook, "w") as handle:
            yaml.safe_dump(wrapper, handle)
    command = [ANSIBLE_PLAYBOOK, playbook, "-e", json.dumps(common)] + list(args)
    engine_and_consul = ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONSUL_HTTP_ADDR")
    run_env = {key: value for key, value in os.environ.items() if not key.startswith("FLOW") and key not in engine_and_consul}
    run_env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
                    "PWD": project.dir})
    run_env.update(result_callback_env(run_env))
    run_env.update(env or {})
    completed = subprocess.run(command, cwd=project.dir, env=run_env, capture_output=True, text=True, timeout=600, check=False)
    loaded = None
    if results_path and os.path.exists(results_path):
        with open(results_path) as handle:
            loaded = json.load(handle)
    run = PlaybookRun(completed, loaded)
    assert "Traceback" not in run.output, run.output
    if expect_failure:
        assert run.rc != 0, "expected a failure:\n" + run.output
    else:
        assert run.rc == 0, "ansible-playbook failed (%d):\n%s" % (run.rc, run.output[-6000:])
    return run


def write_flow_file(project, options):
    project.write("docker-flow.yml", yaml.safe_dump(options))


def served(proxy, path="/demo"):
    """(color, version) the proxy answers with on ``path``; asks a few times, all answers must agree."""
    answers = set()
    for _request in range(5):
        status, body = proxy.get(path)
        assert status == 200, (status, body)
        answers.add((body["color"], body["version"]))
    assert len(answers) == 1, answers
    return answers.pop()


def statuses(project, color):
    return sorted(container.status for container in project.containers(color))


def test_seed_walkthrough_through_the_playbooks(flow_project, proxy):
    project, service = flow_project, flow_project.service
    write_flow_file(project, SEED_FLOW_FILE)

    # Reconfiguring the proxy after deployment: --flow=deploy --flow=proxy
    first = run_playbook(project, proxy, "-e", "flow=deploy,proxy")
    assert "Flow steps (from flow): deploy, proxy" in first.output
    assert "Deployed release 1 of %s as blue" % service in first.output, "the step's progress is shown"
    assert "The proxy routes %s to blue." % service in first.output
    assert served(proxy) == ("blue", "1")
    assert statuses(project, "blue") == ["running"]

    # A new release without downtime: --flow=deploy --flow=proxy --flow=stop-old (the list form of -e)
    project.set_image(APP_V2)
    second = run_playbook(project, proxy, "-e", json.dumps({"flow": ["deploy", "proxy", "stop-old"]}))
    assert "Stopped 1 and removed 0 old instance(s) of %s; live color green." % service in second.output
    assert served(proxy) == ("green", "2")
    assert statuses(project, "blue") == ["exited"], "the old release is stopped, not removed"
    assert project.state()["live_color"] == "green"

    # The same flow again changes nothing.
    again = run_playbook(project, proxy, "-e", "flow=deploy,proxy,stop-old")
    assert again.recap_changed() == 0, again.output

    # Relative scaling: --scale=+2 --flow=scale --flow=proxy, then -2; the proxy follows Consul.
    backend = "be_%s_green" % service
    run_playbook(project, proxy, "-e", "flow=scale,proxy", "-e", "scale=+2")
    assert statuses(project, "green") == ["running"] * 3
    wait_for(lambda: proxy.servers_up(backend) == 3, timeout=10, what="3 green servers up in the proxy")
    assert len({proxy.get("/demo")[1]["hostname"] for _request in range(30)}) == 3
    run_playbook(project, proxy, "-e", "flow=scale,proxy", "-e", "scale=-2")
    assert statuses(project, "green") == ["running"]
    wait_for(lambda: proxy.servers_up(backend) == 1, timeout=10, what="1 green server up after scaling down")
    assert served(proxy) == ("green", "2")

    # Testing a deployment in production: --flow=deploy runs blue beside green, users still get green.
    project.set_image(APP_V1)
    run_playbook(project, proxy, "-e", "flow=deploy")
    assert statuses(project, "blue") == ["running"] and statuses(project, "green") == ["running"]
    blue = project.running("blue")[0]
    assert project.answer(blue)["version"] == "1", "the new release answers on its own port"
    assert served(proxy) == ("green", "2")

    # Then the rest of the flow: --flow=proxy --flow=stop-old
    run_playbook(project, proxy, "-e", "flow=proxy,stop-old")
    assert served(proxy) == ("blue", "1")
    assert statuses(project, "green") == ["exited"]

    # Rollback: the previous release (green) runs again, serves, and blue is stopped.
    rolled = run_playbook(project, proxy, playbook=ROLLBACK_PLAYBOOK)
    assert "(green) of %s is live again" % service in rolled.output, rolled.output
    assert served(proxy) == ("green", "2")
    assert statuses(project, "green") == ["running"] and statuses(project, "blue") == ["exited"]
    assert project.state()["live_color"] == "green"

    # The release step: deploy, proxy and stop-old in one task (flow_release); again, it changes nothing.
    released = run_playbook(project, proxy, "-e", json.dumps({"flow_steps": ["release"]}), results=True)
    assert "Flow steps (from flow_steps): release" in released.output
    (entry,) = released.results
    assert entry["step"] == "release" and entry["changed"] is True, entry
    result = entry["result"]
    assert (result["previous_color"], result["color"], result["live_color"]) == ("green", "blue", "blue"), result
    assert list(result["timings"]) == ["deploy", "proxy", "stop_old"], result["timings"]
    assert "The proxy routes %s to blue (was green)." % service in released.output, "the step's message is shown"
    assert "proxy serves %s from blue" % service in released.output, "and its progress lines"
    assert served(proxy) == ("blue", "1")
    assert statuses(project, "green") == ["exited"] and statuses(project, "blue") == ["running"]
    again = run_playbook(project, proxy, "-e", "flow=release", results=True)
    assert again.recap_changed() == 0 and again.results[0]["changed"] is False, again.output
    assert served(proxy) == ("blue", "1")


def test_rollback_of_a_service_without_route_skips_the_proxy(flow_project, proxy):
    """Deploy-only services (tested on their own ports, never routed) roll back too: no proxy switch."""
    project = flow_project
    write_flow_file(project, {key: value for key, value in SEED_FLOW_FILE.items() if key != "service_path"})
    run_playbook(project, proxy, "-e", "flow=deploy")
    project.set_image(APP_V2)
    run_playbook(project, proxy, "-e", "flow=deploy,stop-old")
    assert statuses(project, "blue") == ["exited"] and statuses(project, "green") == ["running"]

    rolled = run_playbook(project, proxy, playbook=ROLLBACK_PLAYBOOK, results=True)
    assert rolled.rc == 0, rolled.output
    (entry,) = rolled.results
    assert entry["step"] == "rollback" and entry["changed"] is True, entry
    assert entry["switch"].get("skipped") is True, entry["switch"]
    assert "The service has no route: no proxy switch." in entry["msg"], entry["msg"]
    assert statuses(project, "blue") == ["running"] and statuses(project, "green") == ["exited"]
    assert project.answer(project.running("blue")[0])["version"] == "1"
    assert "routes" not in project.state() or not project.state()["routes"]


def test_preview_then_canary_steps_release_the_new_color_through_the_role(flow_project, proxy):
    """deploy,preview keeps the live color routed and opens the new release to requests naming it; canary promotes
    it step by step; a preview step without a way to ask for it fails saying which variable to set."""
    project = flow_project
    write_flow_file(project, SEED_FLOW_FILE)
    run_playbook(project, proxy, "-e", "flow=deploy,proxy")
    project.set_image(APP_V2)
    no_way = run_playbook(project, proxy, "-e", "flow=deploy,preview", expect_failure=True)
    assert "set flow_preview_header or flow_preview_cookie" in no_way.output, no_way.output[-3000:]
    previewed = run_playbook(project, proxy, "-e", "flow=preview", "-e", "flow_preview_header=X-Flow-Color", results=True)
    (entry,) = previewed.results
    assert entry["step"] == "preview" and entry["result"]["live_color"] == "blue", entry
    assert served(proxy) == ("blue", "1")
    status, body = proxy.get("/demo", headers={"X-Flow-Color": "green"})
    assert status == 200 and body["version"] == "2", (status, body)

    released = run_playbook(project, proxy, "-e", "flow=canary,stop-old", "-e",
                            json.dumps({"flow_canary_steps": [50, 100], "flow_canary_dwell": "1s"}), results=True)
    canary, stop_old = released.results
    assert canary["step"] == "canary" and canary["result"]["outcome"] == "promoted", canary
    assert [step["weight"] for step in canary["result"]["canary_steps"]] == [50, 100]
    assert stop_old["step"] == "stop-old" and served(proxy) == ("green", "2")
    assert statuses(project, "blue") == ["exited"]


def test_unknown_step_or_bad_variable_fails_before_anything_runs(flow_project, proxy, docker_client):
    project = flow_project
    write_flow_file(project, SEED_FLOW_FILE)

    failed = run_playbook(project, proxy, "-e", "flow=deploy,bogus,proxy", expect_failure=True)
    assert ('Unknown flow step "bogus" in flow (deploy,bogus,proxy); the steps are deploy, scale, preview, proxy, '
            "canary, stop-old, release, rollback. No step was run.") in failed.output, failed.output

    beside = run_playbook(project, proxy, "-e", json.dumps({"flow_steps": ["deploy", "release"]}), expect_failure=True)
    assert ('"msg": "The flow step release (deploy, proxy and stop-old in one task) runs alone, but flow_steps '
            "(deploy,release) has other steps too: give release alone, or the other steps without it (deploy, proxy, "
            'stop-old for the same release in three tasks). No step was run."') in beside.output, beside.output

    from_env = run_playbook(project, proxy, env={"FLOW": "deploy,stop_old"}, expect_failure=True)
    assert 'Unknown flow step "stop_old" in FLOW' in from_env.output, from_env.output

    bad_variable = run_playbook(project, proxy, "-e", "flow=deploy", "-e", "flow_pull=sometimes", expect_failure=True)
    assert "flow_pull must be one of: always, missing, never, None, got: sometimes" in bad_variable.output, bad_variable.output

    assert project.containers() == [] and project.state() is None
    assert not docker_client.containers.list(all=True, filters={"name": proxy.name}), "no proxy was started"


def test_a_failed_step_names_itself_and_the_steps_not_run(flow_project, proxy):
    project = flow_project  # no docker-flow.yml: nothing says which path to route
    failed = run_playbook(project, proxy, "-e", "flow=deploy,proxy,stop-old", results=False, expect_failure=True)
    assert "Flow step proxy (2 of 3) failed: service_path or service_domain is required" in failed.output, failed.output
    assert "Not run: stop-old." in failed.output
    assert statuses(project, "blue") == ["running"], "the deploy before it stays"


def test_role_variable_over_flow_env_over_docker_flow_yml(flow_project, proxy):
    project = flow_project
    write_flow_file(project, dict(SEED_FLOW_FILE, service_path=["/from-file"], flow=["deploy", "proxy"]))

    # Run from the project directory without project_dir, as the original ran in the current directory.
    # Steps from docker-flow.yml; service_path from the role variable, over FLOW_SERVICE_PATH and the file.
    role = run_playbook(project, proxy, "-e", "service_path=/from-role", env={"FLOW_SERVICE_PATH": "/from-env"},
                        project_dir=False, results=True)
    assert "Flow steps (from %s): deploy, proxy" % os.path.join(project.dir, "docker-flow.yml") in role.output
    assert [entry["step"] for entry in role.results] == ["deploy", "proxy"]
    deployed, routed = role.results
    assert deployed["changed"] and deployed["result"]["color"] == "blue" and deployed["steps"], deployed
    assert routed["result"]["option_sources"]["service_path"] == "parameter"
    assert routed["msg"] == "The proxy routes %s to blue." % project.service
    assert proxy.get("/from-role")[0] == 200 and proxy.get("/from-env")[0] == 503
    assert project.state()["routes"]["paths"] == ["/from-role"]

    # Steps from FLOW, over the file; service_path from FLOW_SERVICE_PATH, over the file.
    env = run_playbook(project, proxy, env={"FLOW": "proxy", "FLOW_SERVICE_PATH": "/from-env"}, results=True)
    assert "Flow steps (from FLOW): proxy" in env.output
    assert env.results[0]["result"]["option_sources"]["service_path"] == "env:FLOW_SERVICE_PATH"
    assert proxy.get("/from-env")[0] == 200 and proxy.get("/from-role")[0] == 503

    # Neither: service_path from docker-flow.yml; steps from the flow variable, over the file.
    file_run = run_playbook(project, proxy, "-e", "flow=proxy", results=True)
    assert file_run.results[0]["result"]["option_sources"]["service_path"] == "file"
    assert proxy.get("/from-file")[0] == 200 and proxy.get("/from-env")[0] == 503
    assert served(proxy, "/from-file") == ("blue", "1")


def role_variables():
    """Every variable of the flow role, from its argument specs: a variable added there is covered too."""
    with open(os.path.join(ROOT, "roles", "flow", "meta", "argument_specs.yml")) as handle:
        return sorted(yaml.safe_load(handle)["argument_specs"]["main"]["options"])


def test_role_variables_set_to_omit_are_not_set_like_null(flow_project, proxy):
    """A user's playbook passes its own variables on with ``flow_scale: "{{ release_scale | default(omit) }}"``
    (it failed with ``scale='<<Omit>>' is not valid``). Every role variable set that way is not set, exactly
    like null: the steps, the project directory and every option then come from FLOW_* and docker-flow.yml."""
    project = flow_project
    names = role_variables()
    assert {"flow_steps", "flow", "flow_project_dir", "flow_scale", "flow_consul_token"} <= set(names), names
    options = dict(SEED_FLOW_FILE, flow=["deploy", "proxy"], scale="2", consul_address=CONSUL_URL,
                   publish_address="127.0.0.1", health_timeout=30, lock_timeout=60, **proxy.options)
    write_flow_file(project, options)
    flow_file = os.path.join(project.dir, "docker-flow.yml")
    runs = {}
    for unset in ("omit", "none"):
        playbook = os.path.join(project.dir, "release-%s.yml" % unset)
        with open(playbook, "w") as handle:
            yaml.safe_dump([{"name": "A user's release playbook", "hosts": "localhost", "gather_facts": False, "roles": [
                {"role": "dockerflow.flow.flow",
                 "vars": {name: "{{ release_%s | default(%s) }}" % (name, unset) for name in names}}]}], handle)
        runs[unset] = run = run_playbook(project, proxy, playbook=playbook, common=False, project_dir=False,
                                         results=True, env={"FLOW_PROJECT_DIR": project.dir})
        assert "Flow steps (from %s): deploy, proxy" % flow_file in run.output, run.output
        assert [entry["step"] for entry in run.results] == ["deploy", "proxy"], run.results
        for entry in run.results:
            passed = sorted(key for key, source in entry["result"]["option_sources"].items() if source == "parameter")
            assert not passed, "%s: set to %s, yet passed to the module: %s" % (entry["step"], unset, passed)
        assert run.results[0]["result"]["option_sources"]["scale"] == "file", run.results[0]["result"]["option_sources"]
    assert statuses(project, "blue") == ["running", "running"], "scale 2 from docker-flow.yml"
    assert served(proxy) == ("blue", "1")
    assert [entry["result"]["option_sources"] for entry in runs["omit"].results] == \
        [entry["result"]["option_sources"] for entry in runs["none"].results], "omit and null resolve alike"


@pytest.mark.long_running
def test_molecule_scenario_of_the_flow_role(tmp_path, docker_client):
    """`molecule test` of roles/flow: converge, idempotence, verify (HTTP through its proxy), destroy,
    with its own Consul, on free ports and names of its own."""
    ident = "m%s" % uuid.uuid4().hex[:6]
    names = ["CONSUL_HTTP", "CONSUL_DNS", "CONSUL_SERVER", "CONSUL_SERF_LAN", "CONSUL_SERF_WAN",
             "PROXY_HTTP", "PROXY_STATS", "PROXY_ADMIN", "PROXY_MASTER"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOW", "MOLECULE_"))}
    ports = free_ports(len(names))
    env.update({"DOCKERFLOW_MOLECULE_%s_PORT" % name: str(port) for name, port in zip(names, ports, strict=True)})
    env.update({"DOCKERFLOW_MOLECULE_ID": ident, "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "ephemeral"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"})
    if os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
        env["MOLECULE_FLOW_COLLECTIONS"] = os.environ["ANSIBLE_COLLECTIONS_PATH"]
    prefix = "dockerflow-test-%s-" % ident
    try:
        completed = subprocess.run([MOLECULE, "test"], cwd=os.path.join(ROOT, "roles", "flow"), env=env,
                                   capture_output=True, text=True, timeout=900, check=False)
        text = completed.stdout + completed.stderr
        assert completed.returncode == 0, text[-8000:]
        assert_molecule_sequence_ran("flow", text)
        left = docker_client.containers.list(all=True, filters={"name": prefix})
        left += docker_client.containers.list(all=True, filters={"label": "dockerflow.service=dftest%s-app" % ident})
        assert not left, "destroy leaves no container behind: %s" % [c.name for c in left]
        assert not docker_client.volumes.list(filters={"name": prefix}), "destroy removes the proxy's volume"
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": prefix}):
            container.remove(force=True, v=True)
