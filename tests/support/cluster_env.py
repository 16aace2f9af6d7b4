# -*- coding: utf-8 -*-
"""The ``env.sh`` that tests/cluster/cluster.sh writes, read by the cluster tests and the Swarm benchmark."""

from __future__ import annotations

import re
import shlex


def read_env_file(path):
    """The ``export NAME=value`` lines of cluster.sh's env.sh, as a dict."""
    values = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r"^export (\w+)=(.*)$", line.strip())
            if match:
                values[match.group(1)] = " ".join(shlex.split(match.group(2)))
    return values
