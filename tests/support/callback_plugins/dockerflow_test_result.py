# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test harness's hand-over of a task result (tests/support/playbook.py, keep_result_task).

A play ends with a set_fact task whose fact ``dockerflow_test_result`` holds ``dest`` and ``content`` (the
registered result as JSON); this callback writes the content to dest on the controller. It replaces a copy
task, which ran two modules (stat and copy) and cost about 1.7 s of CPU on every module call a test makes.
"""

from __future__ import annotations

import os

from ansible.plugins.callback import CallbackBase

RESULT_FACT = "dockerflow_test_result"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dockerflow_test_result"
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_on_ok(self, result):
        data = result.result if hasattr(type(result), "result") else result._result  # .result from ansible-core 2.19
        kept = (data.get("ansible_facts") or {}).get(RESULT_FACT)
        if not isinstance(kept, dict) or "dest" not in kept:
            return
        # Owner only, as the copy tasks it replaces wrote results that may hold secrets.
        with os.fdopen(os.open(kept["dest"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(kept["content"])
