# -*- coding: utf-8 -*-
"""The swarm role's Molecule scenario (roles/swarm/molecule/default) on the cluster's nodes:
every node leaves its swarm, converge makes node1 a manager and node2/node3 workers, a second
converge changes nothing, verify checks each node's role and address and a missing manager
group, and destroy leaves the nodes without a swarm. It runs before the tests that provision
the cluster (marker swarm_teardown), so setup.yml then creates the swarm itself."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, ansible_env

MOLECULE = os.environ.get("DOCKERFLOW_MOLECULE", "molecule")


@pytest.mark.swarm_teardown
def test_swarm_role_molecule_scenario(cluster):
    started = time.monotonic()
    completed = subprocess.run([MOLECULE, "test"], cwd=os.path.join(ROOT, "roles", "swarm"),
                               env=ansible_env(DOCKERFLOW_CLUSTER_INVENTORY=cluster.inventory, NO_COLOR="1"),
                               capture_output=True, text=True, timeout=900, check=False)
    text = re.sub(r"\x1b\[[0-9;]*m", "", "%s\n%s" % (completed.stdout, completed.stderr))
    assert completed.returncode == 0, text[-8000:]
    for action in ("destroy", "syntax", "converge", "idempotence", "verify"):
        assert re.search(r"default \S+ %s: Executed: Successful" % action, text), (action, text[-3000:])
    assert cluster.manager.info()["Swarm"]["LocalNodeState"] == "inactive", "destroy leaves no swarm"
    print("\n[cluster] swarm role molecule test: %.1fs" % (time.monotonic() - started))
