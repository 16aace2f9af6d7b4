# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labels the backends put on instances, containers, networks and volumes.

They are a contract with whatever reads the engine afterwards: the backends themselves, Compose
(the ``com.docker.compose.*`` labels) and the registrator daemon, which finds the flow's instances
by them (``roles/registrator/files/dockerflow_registrator``). The daemon's image carries this
file, so it imports nothing but the standard library.
"""

from __future__ import annotations

LABEL_SERVICE = "dockerflow.service"
LABEL_COLOR = "dockerflow.color"
LABEL_RELEASE = "dockerflow.release"
LABEL_NUMBER = "dockerflow.instance"
LABEL_CONFIG_HASH = "dockerflow.config-hash"
LABEL_SIDE_TARGET = "dockerflow.side-target"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_COMPOSE_SERVICE = "com.docker.compose.service"
LABEL_CONTAINER_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_NETWORK = "com.docker.compose.network"
LABEL_VOLUME = "com.docker.compose.volume"
# Set on instances whose Consul registration the node's registrator owns (Swarm tasks): the
# container port to register, the HTTP check path and whether to add the legacy name too.
LABEL_REGISTER_PORT = "dockerflow.register-port"
LABEL_CHECK_HTTP = "dockerflow.check-http"
LABEL_LEGACY_NAMES = "dockerflow.legacy-names"
# On an image Flow built: the digest of what it was built from (backends.build_context).
LABEL_BUILD_DIGEST = "dockerflow.build-digest"
