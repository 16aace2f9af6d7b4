# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project_dir:
    description:
      - Directory that holds the Compose file and C(docker-flow.yml). Relative O(compose_path) is read from here.
      - Falls back to E(FLOW_PROJECT_DIR), then the module's working directory.
    type: path
  flow_file:
    description:
      - Options file read from O(project_dir). Module parameters override E(FLOW_*) variables, which override this file.
      - When not set, C(docker-flow.yml) is read if it exists. A malformed file fails with its name and line.
    type: path
  compose_path:
    description: The Compose file. Defaults to C(docker-compose.yml). Falls back to E(FLOW_COMPOSE_PATH).
    type: path
  project:
    description:
      - Compose project name, used in container, network and volume names.
      - Defaults to the name of the Compose file's directory. Falls back to E(FLOW_PROJECT).
    type: str
  target:
    description: Compose service that is deployed in colors. Defaults to V(app). Falls back to E(FLOW_TARGET).
    type: str
  service_name:
    description:
      - Name of the service in Consul and in the state. Defaults to C(<project>-<target>), with C(_) and C(.) turned
        into C(-) so that Consul DNS can look it up.
      - Falls back to E(FLOW_SERVICE_NAME).
    type: str
  blue_green:
    description:
      - Run releases as alternating V(blue) and V(green) colors. When false, every release is V(plain) and
        runs beside the previous one until stop-old.
      - Defaults to true. Falls back to E(FLOW_BLUE_GREEN).
    type: bool
  publish_address:
    description:
      - Host address that published container ports bind to, unless the Compose file names one.
      - Defaults to V(0.0.0.0). Falls back to E(FLOW_PUBLISH_ADDRESS).
    type: str
  service_address:
    description:
      - Address registered in Consul for instances, and used to probe their published ports.
      - Defaults to O(publish_address) when it is a specific address, else the host of O(docker_host), else V(127.0.0.1).
    type: str
"""
