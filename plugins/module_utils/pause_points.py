# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pause points: named places in the flow steps where a test can hold a real module process.

An extension point for the fault tests (tests/faults) and the AWX job tests (tests/awx), and for
nothing else. It is inert unless the environment variable DOCKERFLOW_TEST_PAUSE_AT names the point
a step reaches: then the process writes its pid to the file DOCKERFLOW_TEST_PAUSE_FILE names and
waits while that file exists, so the test can kill it, cut it off from Consul or cancel its job at a
known step, and resume it by removing the file. A production run never sets these variables, so a
pause point costs it one environment lookup.
"""

from __future__ import annotations

import os
import time

PAUSE_AT_VARIABLE = "DOCKERFLOW_TEST_PAUSE_AT"
PAUSE_FILE_VARIABLE = "DOCKERFLOW_TEST_PAUSE_FILE"
RESUME_POLL_SECONDS = 0.1

# The points the steps pass, and what is true when a process waits there.
PAUSE_POINTS = {
    "deploy:started": "the new release's instances were created, not yet seen healthy",
    "deploy:healthy": "the new instances are healthy, not yet registered in Consul",
    "deploy:registered": "the new instances are registered in Consul, the release not yet recorded",
    "stop-old:deregistered": "the old instances left Consul (and the proxy drained them), none stopped yet",
    "proxy:switch": "the switch's intent is recorded in the state, nothing activated",
    "proxy:activated": "the new proxy configuration runs, the switch not yet committed to the state",
    "proxy:replacing": "a new proxy container serves beside the old one (renamed <name>-retiring-<id>), which is not "
                       "yet soft-stopped",
    "canary:dwell": "a canary step's weight is recorded and taken by the proxy, its dwell not yet begun",
}


def pause_at(point: str) -> None:
    """Wait at ``point`` while the pause file exists, if DOCKERFLOW_TEST_PAUSE_AT names it; else return at once."""
    path = os.environ.get(PAUSE_FILE_VARIABLE)
    if not path or os.environ.get(PAUSE_AT_VARIABLE) != point:
        return
    with open(path + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    while os.path.exists(path):
        time.sleep(RESUME_POLL_SECONDS)
