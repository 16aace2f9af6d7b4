# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a release's instances run: the backends the flows drive, one concern a file.

- ``base``: the interface the flows use (``Backend``), ``Instance`` and ``DeploymentContext``;
- ``connection``: reaching an engine (address, TLS, client) and ``default_probe_address``;
- ``engine``: what both backends do alike on one engine (errors, images, networks, side targets);
- ``container`` and ``container_spec``: plain containers, and a Compose service in the engine's API;
- ``swarm``, ``swarm_spec`` and ``swarm_tasks``: Swarm services, a Compose service as a service
  spec, and tasks as instances;
- ``selection``: which backend an engine gets (``backend`` option).

Import from the module that defines a name (AnsiballZ packs only the files a module imports).
"""
