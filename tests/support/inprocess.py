# -*- coding: utf-8 -*-
"""Run a collection module in this process (milliseconds instead of an ansible-playbook run):
its arguments go in through ansible-core's ``patch_module_args``; the JSON it prints on
exit_json/fail_json comes back as a dict. Anything the module raises past its own handling
propagates, traceback included, which is what a test looking for tracebacks wants."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from unittest import mock

from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

MODULE_PACKAGE = "ansible_collections.dockerflow.flow.plugins.modules."


def module_of(name):
    return importlib.import_module(MODULE_PACKAGE + name)


def run_module(name, args, check_mode=False):
    """The result dict of module ``name`` with ``args`` (check mode if asked)."""
    payload = dict(args)
    if check_mode:
        payload["_ansible_check_mode"] = True
    # Warnings are module-global in ansible-core: one call's must not show up in the next one's result.
    module_warnings._global_warnings.clear()
    module_warnings._global_deprecations.clear()
    output = io.StringIO()
    with patch_module_args(payload), contextlib.redirect_stdout(output):
        try:
            module_of(name).main()
        except SystemExit:
            pass
        else:
            raise AssertionError("%s returned without exit_json or fail_json" % name)
    lines = [line for line in output.getvalue().splitlines() if line.strip()]
    if not lines:
        raise AssertionError("%s printed no result" % name)
    return json.loads(lines[-1])


def argument_spec_of(name):
    """The argument spec module ``name`` builds (its main() is run with FlowModule replaced)."""
    module = module_of(name)
    captured = {}

    class Capture:
        def __init__(self, spec, **_kwargs):
            captured.update(spec)

        def run(self, _action):
            return None

    with mock.patch.object(module, "FlowModule", Capture):
        module.main()
    return captured
