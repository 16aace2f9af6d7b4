# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy's container made and started through the Docker API, for a new proxy (ProxyNode.ensure_running) and
for one taking over from the running one (proxy_replacement): what only a new container applies is set here, the
master CLI's address (its command), the image and the nofile limit (proxy_limits)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_limits
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import CONFIG_DIR

try:
    import docker.errors
    import docker.types
except ImportError:  # pragma: no cover - reported by backends.connection.connect
    pass

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode


def create(node: ProxyNode, command: list[str], labels: dict[str, str], restart_policy: dict[str, Any]) -> None:
    """The proxy's container (its image pulled, its volume created if missing); the master CLI's address is fixed
    here: a later proxy_admin_address applies to a new container."""
    api = node.api
    try:
        api.inspect_image(node.image)
    except docker.errors.ImageNotFound:
        try:
            api.pull(node.image)
        except docker.errors.DockerException as exc:
            raise FlowError("Proxy image %s is not on the proxy host and pulling it failed: %s." % (node.image, exc))
    try:
        api.inspect_volume(node.volume)
    except docker.errors.NotFound:
        node.docker_call("creating volume %s" % node.volume, api.create_volume, node.volume, labels=labels)
    mounts = [docker.types.Mount(target=CONFIG_DIR, source=node.volume, type="volume")]
    host_config = api.create_host_config(network_mode="host", restart_policy=restart_policy, mounts=mounts,
                                         ulimits=proxy_limits.ulimits(node.nofile))
    # user 0 binds port 80 on the host network; the workers drop to the haproxy user.
    node.docker_call("creating proxy %s" % node.name, api.create_container, node.image, name=node.name, user="0",
                     command=command, labels=labels, host_config=host_config)


def start(node: ProxyNode, created: bool = False) -> None:
    """Start the container, which goes if it failed and was just ``created`` (the next run makes it anew, with its
    settings then); an engine that cannot give it its nofile limit fails in one line."""
    try:
        node.docker_call("starting proxy %s" % node.name, node.api.start, node.name)
    except FlowError as error:
        if created:
            node.docker_call("removing proxy %s" % node.name, node.api.remove_container, node.name, force=True)
        raise proxy_limits.refused_nofile(error.msg, node.nofile, node.name) or error
