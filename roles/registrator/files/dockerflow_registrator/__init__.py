# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dockerflow registrator: a daemon that registers the published ports of the containers on
one Docker engine in the local Consul agent, the way ``gliderlabs/registrator`` did (that image is
abandoned; its Docker client is years older than the engines that now refuse old API versions).

It is a program shipped in an image, not a helper for the modules: the registrator role
(``roles/registrator``) builds the image from this package and, at their package path, the few
module_utils files it shares with the flow (``registration.py``, ``labels.py``, ``errors.py``), so
a Swarm task registered by the registrator looks the same in Consul as a container the flow
registered. Only the Python standard library is needed at run time: the Docker Engine API (version
negotiated with the engine) and the Consul agent API are spoken over plain HTTP, so the image
builds from any base image with python3 and without network access. Run it with::

    python3 -m dockerflow_registrator --consul http://127.0.0.1:8500 --ip 10.0.0.5

The daemon resyncs on start (registers every running container, deregisters the dangling
entries it made earlier), then follows the engine's container events and registers or
deregisters within milliseconds, and resyncs again every ``--resync`` seconds as a safety
net.

Conventions (container environment or labels named exactly ``SERVICE_*``; labels win over
the environment and ``SERVICE_<port>_*`` wins over ``SERVICE_*`` for that container port):

- one service a published port; ports that are only exposed are not registered;
- ``SERVICE_NAME`` / ``SERVICE_<port>_NAME``: the service name, else the image's basename;
  when the container publishes several ports, ``-<port>`` is appended unless the name came
  from ``SERVICE_<port>_NAME``;
- ``SERVICE_TAGS`` (comma-separated, added to ``--tags``), ``SERVICE_ID``;
- ``SERVICE_IGNORE=true`` skips the container (``SERVICE_<port>_IGNORE`` one port);
  ``--explicit`` registers only ports that have a name set;
- ``SERVICE_CHECK_HTTP=/path`` (or ``SERVICE_CHECK_HTTPS``, with
  ``SERVICE_CHECK_TLS_SKIP_VERIFY``), ``SERVICE_CHECK_TCP=true``, ``SERVICE_CHECK_TTL=30s``,
  ``SERVICE_CHECK_INTERVAL`` (default 10s), ``SERVICE_CHECK_TIMEOUT``,
  ``SERVICE_CHECK_INITIAL_STATUS``, ``SERVICE_CHECK_DEREGISTER_AFTER``.

Containers labelled ``dockerflow.service`` are the flow modules' instances (``flow_instances``).
Plain containers among them are the flow's to register; when one starts again on a new ephemeral
host port (its restart policy, a daemon restart), the registrator points the flow's entry at that
port (``flow_repairs``), on the container's start event and at every resync. Swarm tasks, which
also carry ``dockerflow.register-port``, are this registrator's to register, exactly as the flow
would (``registration.Registration``: service ``dockerflow.service`` tagged with its color and
release, ID ``dockerflow-<container name>``, the check on ``dockerflow.check-http`` or TCP),
whatever ``--explicit`` and ``--require-label`` say; their check starts critical, so the flow,
which waits for them to pass, and the proxy see them only once they answer. Other service IDs
are ``<node>:<container name>:<container port>`` (``:udp`` added for UDP). Every entry carries
``Meta[dockerflow-registrator] = <node>``; the cleanup of dangling entries only ever touches
entries with this node's mark.

The address is the port's host binding when the port is published on one address (a port
bound to 127.0.0.1 answers nowhere else), and ``--ip`` when it is published on all of them.

One concern a module: ``settings`` (what every registration shares), ``attributes`` (the
``SERVICE_*`` values), ``ports`` (published ports), ``checks`` (``SERVICE_CHECK_*``),
``entries`` (what goes to the agent), ``containers`` (a container's registrations),
``flow_instances`` (the flow's instances), ``docker_engine`` and ``consul_agent`` (the two HTTP
clients), ``daemon`` (reconciliation and the event loop), ``cli`` (the command line).
"""

from __future__ import annotations

from .cli import main, parse_args
from .consul_agent import ConsulAgent
from .containers import image_basename, map_container
from .daemon import Registrator, event_container
from .docker_engine import EVENT_ACTIONS, DockerAPI
from .entries import META_CONTAINER, META_CONTAINER_ID, META_REGISTRATOR, META_SPEC, Mapping, ServiceEntry
from .flow_instances import flow_repairs
from .settings import Settings

__all__ = [
    "EVENT_ACTIONS",
    "META_CONTAINER",
    "META_CONTAINER_ID",
    "META_REGISTRATOR",
    "META_SPEC",
    "ConsulAgent",
    "DockerAPI",
    "Mapping",
    "Registrator",
    "ServiceEntry",
    "Settings",
    "event_container",
    "flow_repairs",
    "image_basename",
    "main",
    "map_container",
    "parse_args",
]
