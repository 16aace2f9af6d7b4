# -*- coding: utf-8 -*-
"""The collection builds, installs from its tarball, and its documentation renders cleanly."""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(
    os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "flow_*.py"))
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build_dir = tmp_path_factory.mktemp("build")
    install_dir = tmp_path_factory.mktemp("installed")
    built = subprocess.run(
        ["ansible-galaxy", "collection", "build", ROOT, "--output-path", str(build_dir)],
        capture_output=True, text=True, timeout=300, check=False
    )
    assert built.returncode == 0, built.stdout + built.stderr
    tarballs = glob.glob(str(build_dir / "dockerflow-flow-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    done = subprocess.run(
        ["ansible-galaxy", "collection", "install", tarballs[0], "-p", str(install_dir), "--force", "--offline"],
        capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collection = install_dir / "ansible_collections" / "dockerflow" / "flow"
    assert (collection / "plugins" / "modules" / "flow_deploy.py").is_file()
    for unwanted in (".venv", ".build", ".cache", "tests/output"):
        assert not (collection / unwanted).exists(), "%s must not be in the tarball" % unwanted
    return install_dir


def test_every_module_is_documented():
    assert MODULES == ["flow_canary", "flow_deploy", "flow_info", "flow_proxy", "flow_release", "flow_rollback",
                       "flow_scale", "flow_stop_old"]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_without_warnings(installed, module):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_NOCOLOR="1")
    shown = subprocess.run(["ansible-doc", "dockerflow.flow.%s" % module],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "WARNING" not in shown.stderr and "ERROR" not in shown.stderr, shown.stderr
    assert "EXAMPLES" in shown.stdout and "RETURN VALUES" in shown.stdout
    assert str(installed) in shown.stdout, "the installed copy must be the one documented"


def test_action_group_lists_every_module(installed):
    import yaml

    with open(os.path.join(str(installed), "ansible_collections", "dockerflow", "flow", "meta", "runtime.yml")) as handle:
        runtime = yaml.safe_load(handle)
    assert sorted(runtime["action_groups"]["flow"]) == MODULES


def test_flow_role_passes_every_option_of_each_module(installed):
    """The flow role hands each module the options set for it from a table; a module option the table
    lacks could never be set through the role, one the module lacks would fail the step."""
    import json

    import yaml

    with open(os.path.join(ROOT, "roles", "flow", "vars", "main.yml")) as handle:
        tables = yaml.safe_load(handle)
    with open(os.path.join(ROOT, "roles", "flow", "meta", "argument_specs.yml")) as handle:
        role_options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    for module, listed in tables["__flow_module_options"].items():
        shown = subprocess.run(["ansible-doc", "--json", "dockerflow.flow.%s" % module],
                               capture_output=True, text=True, env=env, timeout=120, check=True)
        documented = set(json.loads(shown.stdout)["dockerflow.flow.%s" % module]["doc"]["options"]) - {"state"}
        assert sorted(listed) == sorted(documented), module
        for option in listed:
            variable = tables["__flow_option_vars"].get(option)
            assert variable, "%s: option %s has no role variable in __flow_option_vars" % (module, option)
            assert variable in role_options, "%s is not in the flow role's argument_specs" % variable
