# -*- coding: utf-8 -*-
"""Several module calls in one ``ansible-playbook`` run: one process start (seconds on a loaded
machine) for a batch of cases, each result kept even when it failed."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import yaml

RESULT_CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")
RESULT_CALLBACK = "dockerflow_test_result"


def keep_result_task(register, dest):
    """The task that writes the result registered as ``register`` to ``dest`` as JSON (written_task)."""
    return written_task(dest, "{{ %s | to_json }}" % register)


def written_task(dest, content, name="keep the result"):
    """A task that writes ``content`` (templated) to ``dest``: a set_fact that the harness's callback
    (callback_plugins/dockerflow_test_result.py) writes out on the controller, in a run whose environment
    has result_callback_env. No module runs for it; a copy task ran two (stat and copy), about 1.7 s of CPU."""
    return {"name": name, "ansible.builtin.set_fact": {RESULT_CALLBACK: {"dest": dest, "content": content}}}


def result_callback_env(env):
    """The environment entries that enable the result callback, beside whatever ``env`` enables already."""
    def joined(name, value, separator):
        return separator.join(part for part in (env.get(name), value) if part)

    return {"ANSIBLE_CALLBACK_PLUGINS": joined("ANSIBLE_CALLBACK_PLUGINS", RESULT_CALLBACK_DIR, os.pathsep),
            "ANSIBLE_CALLBACKS_ENABLED": joined("ANSIBLE_CALLBACKS_ENABLED", RESULT_CALLBACK, ",")}


def run_tasks(project, calls, env=None, extra_args=(), defaults=True):
    """Run ``calls`` — (module, params) pairs — as tasks of one play in ``project`` (a conftest
    FlowProject, whose defaults and environment apply) and return (results, completed process).
    Every task runs with ignore_errors; results come back in order."""
    tasks, result_paths = [], []
    for index, (module, params) in enumerate(calls):
        command, run_env = project.playbook(module, params, env=env, defaults=defaults)
        play_path = command[-1]
        with open(play_path) as handle:
            single = yaml.safe_load(handle)[0]["tasks"]
        os.unlink(play_path)
        single[0]["name"] = "case %d: %s" % (index, module)
        single[0]["register"] = "result_%d" % index
        result_paths.append(os.path.join(project.dir, "result-%d-%s.json" % (index, uuid.uuid4().hex[:6])))
        single[1] = keep_result_task("result_%d" % index, result_paths[-1])
        tasks += single
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path = os.path.join(project.dir, "batch-%s.yml" % uuid.uuid4().hex[:6])
    with open(path, "w") as handle:
        yaml.safe_dump(play, handle)
    command = command[:-1] + list(extra_args) + [path]
    completed = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=900, check=False)
    results = []
    for result_path in result_paths:
        try:
            with open(result_path) as handle:
                results.append(json.load(handle))
        except (OSError, ValueError):
            raise AssertionError("ansible-playbook gave no result:\n%s\n%s" % (completed.stdout, completed.stderr))
    return results, completed


def assert_clean_failure(result):
    """A failure with a one-line message and no traceback anywhere."""
    assert result.get("failed"), "expected a failure, got %s" % json.dumps(result, indent=1)
    assert result["msg"] and "\n" not in result["msg"], "msg must be one line: %r" % result["msg"]
    assert "MODULE FAILURE" not in result["msg"], result
    for key in ("msg", "exception", "module_stderr", "module_stdout"):
        assert "Traceback" not in str(result.get(key, "")), result
    assert not result["msg"].startswith("Unexpected "), result["msg"]
