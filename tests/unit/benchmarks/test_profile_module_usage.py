# -*- coding: utf-8 -*-
"""profile_module.py run by hand with the wrong arguments says its usage and exits 2 (could not run), without a
traceback; it is the process switch_latency.py and module_profile.py start for each profiled step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.abspath(__file__).rsplit(os.sep + "tests" + os.sep, 1)[0], "benchmarks", "profile_module.py")


@pytest.mark.parametrize("arguments", [["--help"], [], ["flow_proxy", "args.json"], ["flow_proxy", "a", "b", "--profile"]])
def test_wrong_arguments_give_the_usage_and_exit_2(arguments):
    completed = subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2, completed
    assert completed.stderr == "usage: profile_module.py MODULE ARGS_JSON OUT_JSON [--cprofile]\n", completed.stderr
