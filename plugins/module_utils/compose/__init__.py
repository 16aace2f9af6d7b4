# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Compose file into normalized service specs.

Callers need only ``load_project`` (and the specs it yields); the package reads in this order:

- ``load``: the file, its variables (``env_files``, ``interpolation``), the top-level check and ``extends``,
  into a ``ComposeProject`` (``project``) of raw services and named resources (``resources``);
- ``services``: one raw service into a ``ServiceSpec`` (``specs``), on demand, with its
  ``ports``, ``mounts`` and ``deploy_section``;
- ``values``: the value forms many keys share (durations, sizes, lists or mappings).

A new service key goes to ``services`` and ``specs``, or to a file of its own beside
``ports`` and ``mounts`` when it is a section; a new top-level section to ``load`` and
``resources``; a new interpolation form to ``interpolation``.
"""

from __future__ import annotations

from ansible_collections.dockerflow.flow.plugins.module_utils.compose.deploy_section import (
    ENDPOINT_MODES,
    SUPPORTED_DEPLOY_KEYS,
    SWARM_RESTART_CONDITIONS,
    parse_deploy,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.env_files import read_dotenv
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.interpolation import interpolate
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.load import SUPPORTED_TOP_KEYS, load_project
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.ports import PORT_MODES, PORT_PROTOCOLS, parse_port
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.project import ComposeProject
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.services import (
    RESTART_POLICIES,
    SUPPORTED_SERVICE_KEYS,
    normalize_service,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.specs import (
    DeploySpec,
    MountSpec,
    PortSpec,
    ServiceSpec,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.compose.values import parse_bytes, parse_duration_ns

__all__ = [
    "ENDPOINT_MODES",
    "PORT_MODES",
    "PORT_PROTOCOLS",
    "RESTART_POLICIES",
    "SUPPORTED_DEPLOY_KEYS",
    "SUPPORTED_SERVICE_KEYS",
    "SUPPORTED_TOP_KEYS",
    "SWARM_RESTART_CONDITIONS",
    "ComposeProject",
    "DeploySpec",
    "MountSpec",
    "PortSpec",
    "ServiceSpec",
    "interpolate",
    "load_project",
    "normalize_service",
    "parse_bytes",
    "parse_deploy",
    "parse_duration_ns",
    "parse_port",
    "read_dotenv",
]
