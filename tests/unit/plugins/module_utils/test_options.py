# -*- coding: utf-8 -*-
"""The option table (plugins/module_utils/options.py) is the only definition of an option: every
copy of it must be what the table gives, and a copy that drifts fails here.

- The argument specs, config.OPTIONS, FlowModule.OPTION_NAMES and the defaults of FlowSettings
  and ProxySettings are built from it.
- The doc fragment and the flow role's files that Ansible reads literally are generated from it
  (``make options``, tests/support/option_docs.py): they must be current, and what ansible-doc
  shows for every module and for the role must be the table's, whatever the module files say.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.dockerflow.flow.plugins.module_utils import config, options
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings
from ansible_collections.dockerflow.flow.plugins.module_utils.module_base import FlowModule
from ansible_collections.dockerflow.flow.plugins.module_utils.option_type import MODULES
from ansible_collections.dockerflow.flow.plugins.module_utils.options import OPTIONS, TABLE
from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowSettings
from support import option_docs
from support.inprocess import argument_spec_of


def test_every_option_is_defined_once_and_completely():
    assert len(OPTIONS) == len(TABLE)
    for option in TABLE:
        assert option.group in options.GROUPS, option.name
        assert option.type in ("str", "int", "bool", "path", "list", "raw"), option.name
        assert option.doc and "\n" not in option.doc and option.doc.endswith((".", ")")), option.name
        assert set(option.modules) <= set(MODULES), option.name
        assert option.group == "seed" or option.modules, "%s: no module uses it" % option.name
        assert not option.choices or option.default in (None, *option.choices), option.name
        assert all(name.isupper() for name in option.env), option.name


@pytest.mark.parametrize("module", MODULES)
def test_each_module_takes_the_argument_spec_the_table_gives(module):
    spec = argument_spec_of(module)
    assert spec == options.module_spec(module)
    shared = {option.name for option in TABLE if option.shared}
    assert shared <= set(spec), "every module takes every shared option"
    assert options.used_by(module) <= set(spec)


def test_flow_release_uses_what_its_steps_use_but_the_options_that_choose_what_a_step_does():
    steps = options.used_by("flow_deploy") | options.used_by("flow_proxy") | options.used_by("flow_stop_old")
    assert options.used_by("flow_release") == steps - {"color", "state"}
    assert "state" not in options.module_spec("flow_release") and "color" not in options.module_spec("flow_release")


def test_a_resolved_option_has_no_default_in_the_spec_so_unset_is_told_apart():
    for option in TABLE:
        if option.resolved:
            assert "default" not in option.spec(), option.name
            assert config.OPTIONS[option.name] is option
    assert set(FlowModule.OPTION_NAMES) == {o.name for o in TABLE if o.resolved and o.modules}


def _defaults(settings_class):
    defaults = {}
    for field in dataclasses.fields(settings_class):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


def test_the_settings_defaults_are_the_tables():
    # Where the table has a default, a FlowSettings field of that name has the same (None: left to the options).
    flow_defaults = _defaults(FlowSettings)
    checked = [name for name in flow_defaults if name in OPTIONS and OPTIONS[name].default is not None]
    assert {"health_timeout", "lock_timeout", "lock_ttl", "keep_releases", "pull", "blue_green"} <= set(checked)
    for name in checked:
        assert flow_defaults[name] in (None, OPTIONS[name].default), name
    proxy_defaults = _defaults(ProxySettings)
    for field, name in (("http_address", "proxy_listen_address"), ("http_port", "proxy_http_port"),
                        ("stats_address", "proxy_stats_address"), ("stats_port", "proxy_stats_port"),
                        ("admin_address", "proxy_admin_address"), ("admin_port", "proxy_admin_port"),
                        ("max_servers", "proxy_max_servers")):
        assert proxy_defaults[field] == OPTIONS[name].default, name
    assert "%s:%s" % (proxy_defaults["consul_dns_address"], proxy_defaults["consul_dns_port"]) == OPTIONS["consul_dns"].default
    assert options.default("side_targets") is not options.default("side_targets"), "a list default is a copy"


# --------------------------------------------------------------------------- the generated copies


def test_the_generated_files_are_what_the_table_gives():
    stale = option_docs.stale()
    assert not stale, "not what the option table gives (run `make options`): %s" % ", ".join(stale)


COPIES = [option_docs.FRAGMENT, option_docs.ROLE_SPECS, option_docs.ROLE_VARS, option_docs.ROLE_DEFAULTS,
          option_docs.PLAYBOOK]
DRIFTS = [
    # (file, a line as generated, the same line drifted): a wrong default, type or description, a missing option
    (option_docs.FRAGMENT, "C(health_timeout) in C(docker-flow.yml), then V(120).",
     "C(health_timeout) in C(docker-flow.yml), then V(60)."),
    (option_docs.FRAGMENT, "    default: 60\n", "    default: 30\n"),
    (option_docs.ROLE_SPECS, "      flow_lock_ttl:\n", "      flow_lock_tll:\n"),
    (option_docs.ROLE_SPECS, "        type: int\n", "        type: str\n"),
    # null among a role variable's choices: without it, a variable set to null or omit fails the argument check
    (option_docs.ROLE_SPECS, "        choices: [blue, green, plain, null]\n", "        choices: [blue, green, plain]\n"),
    (option_docs.ROLE_VARS, "  docker_host: flow_host\n", ""),
    (option_docs.ROLE_VARS, "    - side_targets\n", ""),
    (option_docs.ROLE_DEFAULTS, "# flow_scale:\n", ""),
    (option_docs.PLAYBOOK, "        flow_scale: \"{{ scale | default(none) }}\"\n", ""),
]


@pytest.mark.parametrize("path, line, drifted", DRIFTS)
def test_a_copy_that_drifts_is_found(tmp_path, path, line, drifted):
    for copy in COPIES:
        os.makedirs(os.path.dirname(tmp_path / copy), exist_ok=True)
        shutil.copy(os.path.join(option_docs.ROOT, copy), tmp_path / copy)
    assert option_docs.stale(str(tmp_path)) == {}
    text = (tmp_path / path).read_text(encoding="utf-8")
    assert line in text
    (tmp_path / path).write_text(text.replace(line, drifted, 1), encoding="utf-8")
    assert list(option_docs.stale(str(tmp_path))) == [path]


def test_a_file_without_its_markers_is_refused():
    with pytest.raises(ValueError, match="no block between"):
        option_docs.replace_block("argument_specs: {}\n", [], option_docs.ROLE_SPECS)


@pytest.fixture(scope="module")
def ansible_doc():
    """What ansible-doc shows of the modules and the flow role (the collection on ANSIBLE_COLLECTIONS_PATH)."""
    # This checkout's collection, the one imported here, whatever else is on the collections path.
    collections = os.path.abspath(os.path.join(os.path.dirname(options.__file__), *[".."] * 5))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections)
    command = os.path.join(os.path.dirname(sys.executable), "ansible-doc")

    def show(*args):
        shown = subprocess.run([command, "--json", *args], capture_output=True, text=True, env=env, timeout=300,
                               check=True)
        return json.loads(shown.stdout)
    modules = show(*("dockerflow.flow.%s" % module for module in MODULES))
    role = show("-t", "role", "dockerflow.flow.flow")
    return {module: modules["dockerflow.flow.%s" % module]["doc"]["options"] for module in MODULES}, \
        role["dockerflow.flow.flow"]["entry_points"]["main"]["options"]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_each_modules_options_as_the_table_has_them(ansible_doc, module):
    documented = ansible_doc[0][module]
    expected = {option.name: option_docs.module_doc(option) for option in options.accepted_by(module)}
    assert sorted(documented) == sorted(expected)
    for name, doc in expected.items():
        assert documented[name] == doc, name


def test_ansible_doc_shows_the_flow_roles_variables_as_the_table_has_them(ansible_doc):
    documented = dict(ansible_doc[1])
    assert documented.pop("flow_steps")["type"] == "list" and documented.pop("flow")["type"] == "raw"
    expected = {option.variable: option_docs.role_doc(option) for option in option_docs.role_options()}
    assert sorted(documented) == sorted(expected)
    for name, doc in expected.items():
        assert documented[name] == doc, name
    with open(os.path.join(option_docs.ROOT, option_docs.ROLE_VARS), encoding="utf-8") as handle:
        tables = yaml.safe_load(handle)
    for module in MODULES:
        assert sorted(tables["__flow_module_options"][module]) == sorted(set(ansible_doc[0][module]) - {"state"})


def test_the_proxy_roles_defaults_of_the_proxy_options_are_the_tables():
    """The proxy role passes its own variables to flow_proxy; those named after a proxy option default
    to the table's value (its defaults and argument specs are hand-written, so they are checked here)."""
    role = os.path.join(option_docs.ROOT, "roles", "proxy")
    with open(os.path.join(role, "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    checked = [name for name in defaults if name in OPTIONS and OPTIONS[name].group == "proxy" and OPTIONS[name].default]
    assert len(checked) >= 9, checked
    for name in checked:
        assert defaults[name] == OPTIONS[name].default, name
        assert specs[name].get("default") == OPTIONS[name].default, name
        assert specs[name]["type"] == OPTIONS[name].type, name
