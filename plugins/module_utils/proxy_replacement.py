# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A new proxy container, for settings only a new one applies (ProxyNode.drift: the image, the master CLI's
address, the nofile limit), taking over from the running one without a gap.

The new container shares the host network and the configuration volume with the old one. Started with
``-x ADMIN_SOCKET`` it takes the very listening sockets over from the old worker (its unix stats socket has
``expose-fd listeners``): both accept from the same queues until the old one, soft-stopped, closes its copies, so no
connection is refused or reset. (SO_REUSEPORT alone lets the new one bind sockets of its own beside the old ones;
the connections waiting in the old ones' queues are then reset when they close.) The new container loads the
haproxy.cfg the old one runs, so it serves the same configuration generation. A restart of the new container later,
with no old one to ask, logs that -x found nobody and binds as usual; a master-worker reload drops -x by itself.

Order, all or nothing: rename the old container to ``<name>-retiring-<short id>``; create and start the new one
under the proxy's name (same labels and restart policy) until its master says its worker runs; then soft-stop the
old one (SIGUSR1 to its master: its workers finish their requests; hard-stop-after bounds them) and remove it. If the
new one does not come up it is removed and the old one, which served all along, gets its name back. A run killed
midway leaves a retiring container, which the next run finds by its name: it finishes the replacement when the new
container serves, else undoes it. The caller holds the proxy's lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_container
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import config_generation
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import ADMIN_SOCKET
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_limits import container_nofile

try:
    import docker.errors
except ImportError:  # pragma: no cover - reported by backends.connection.connect
    pass

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext

RETIRING = "-retiring-"
# What HAProxy's master logs once its worker runs: the new container serves from then on.
WORKER_READY = "Loading success."
# How long a replacement waits for the old container to finish its requests; beyond that it exits by itself
# (hard-stop-after) and the next run removes it.
RETIRE_WAIT = 30.0


class Replacement:
    def __init__(self, node: ProxyNode) -> None:
        self.node = node
        self.api = node.api

    def apply(self, flow: FlowContext, initial: str, differences: list[str]) -> None:
        """Replace the node's container (``differences``: what drift() found), or in check mode say it would. Its
        running worker first runs a configuration with the socket that hands the listeners over (``initial``, what
        Consul records, if it does not), and haproxy.cfg holds what it runs: the new container loads that."""
        node, what = self.node, "; ".join(differences)
        if flow.check_mode:
            flow.progress("proxy %s would be replaced: it %s" % (node.name, what))
            return
        if ADMIN_SOCKET not in (node.running_config() or ""):  # rendered before the socket was added
            node.activate(initial, config_generation(initial))
            flow.progress("proxy configuration %s activated: it hands its listeners over" % config_generation(initial))
        node.restore_running_file()
        if not self.replace(node.running_generation(), serving=lambda: flow.checkpoint("proxy:replacing")):
            flow.warnings.append("The old container of proxy %s still finishes requests; it exits by itself "
                                 "(hard-stop-after) and the next run removes it." % node.name)
        flow.progress("proxy %s replaced without a gap: it %s" % (node.name, what))

    def retiring(self) -> list[str]:
        """The proxy's old containers a replacement renamed and has not removed yet (a run killed midway)."""
        prefix = self.node.name + RETIRING
        found = self.node.docker_call("listing the containers of proxy %s" % self.node.name, self.api.containers, all=True,
                                      filters={"name": prefix})
        return sorted(name[1:] for container in found for name in container["Names"] if name[1:].startswith(prefix))

    def replace(self, generation: str, timeout: float = 30, serving: Callable[[], None] = lambda: None) -> bool:
        """The new container takes over from the running one, which serves ``generation`` (see the module's doc);
        ``serving`` is called once both serve. Returns False when the old one still finished requests after
        RETIRE_WAIT (the next run removes it)."""
        node = self.node
        old = node.inspect()
        retiring = "%s%s%s" % (node.name, RETIRING, old["Id"][:12])
        # The new worker starts with the servers' addresses and states the old one sees: without them it answers
        # 503 until its DNS resolution and checks find them (measured: 7 of 27,669 requests on fresh connections).
        node.save_server_state()
        if "proxy_nofile" not in node.asked_for:  # the limit a run set before stays, unless this one sets another
            node.nofile = container_nofile(old)
        node.docker_call("renaming proxy %s" % node.name, self.api.rename, node.name, retiring)
        try:
            proxy_container.create(node, node.command() + ["-x", ADMIN_SOCKET], old["Config"].get("Labels") or {},
                                   old["HostConfig"].get("RestartPolicy") or {"Name": "unless-stopped"})
            proxy_container.start(node)
            self._wait_worker(timeout)
        except FlowError as error:
            failed = "Replacing proxy %s failed" % node.name
            try:
                self._undo(retiring)
            except FlowError as undo_error:
                raise FlowError("%s: %s; undoing it failed too (the next run does it): %s"
                                % (failed, error.msg.rstrip("."), undo_error.msg))
            raise FlowError("%s, so the old container keeps serving: %s" % (failed, error.msg.rstrip(".")))
        serving()
        retired = self._retire(retiring)
        if not node.reports_generation(generation, timeout):
            raise FlowError("Proxy %s was replaced, but its new container does not report configuration %s: %s"
                            % (node.name, generation, node.logs()[-300:]))
        return retired

    def settle(self, check_mode: bool = False) -> list[str]:
        """A replacement a killed run left half-done: finished when the new container serves, else undone. Says
        what it did (or would do) for each old container left."""
        done = []
        for retiring in self.retiring():
            current = self.node.inspect()
            serves = (current is not None and current["State"]["Status"] == "running"
                      and WORKER_READY in self._master_log(tail=1000))  # a long-running one logged more since
            if not check_mode:
                if serves:
                    self._retire(retiring)
                else:
                    self._undo(retiring, current and current["HostConfig"].get("RestartPolicy"))
            what = ("finish" if serves else "undo") if check_mode else ("finished" if serves else "undid")
            done.append("%s%s the replacement of proxy %s that a run left half-done (%s)"
                        % ("would " if check_mode else "", what, self.node.name, retiring))
        return done

    def _wait_worker(self, timeout: float) -> None:
        """Until the new container's master says its worker runs; FlowError (with its last log lines) if it exits."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.node.inspect()["State"]
            logs = self._master_log()
            if state["Status"] == "running" and WORKER_READY in logs:
                return
            if state["Status"] != "running" or time.monotonic() >= deadline:
                lines = [line.strip() for line in logs.splitlines() if line.strip()]
                what = ("exited with code %s" % state.get("ExitCode") if state["Status"] != "running"
                        else "did not start a worker within %ds" % timeout)
                raise FlowError("the new container %s: %s" % (what, " | ".join(lines[-2:]) or "it logged nothing"))
            time.sleep(0.3)

    def _undo(self, retiring: str, restart_policy: dict[str, Any] | None = None) -> None:
        """The new container gone, the old one under the proxy's name again, running as it was (a killed run may
        have soft-stopped it already: then ``restart_policy``, the new one's, goes back on it too)."""
        node = self.node
        try:
            self.api.remove_container(node.name, force=True)
        except docker.errors.NotFound:
            pass
        node.docker_call("renaming proxy %s back" % retiring, self.api.rename, retiring, node.name)
        if node.status() != "running":
            node.docker_call("updating proxy %s" % node.name, self.api.update_container, node.name,
                             restart_policy=restart_policy or {"Name": "unless-stopped"})
            node.docker_call("starting proxy %s" % node.name, self.api.start, node.name)
            node.wait_ready()

    def _retire(self, retiring: str) -> bool:
        """Soft-stop the old container and remove it once it exited; its restart policy goes first, or Docker would
        start it again. False if it still runs after RETIRE_WAIT."""
        self.node.docker_call("updating proxy %s" % retiring, self.api.update_container, retiring,
                              restart_policy={"Name": "no"})
        if self._status_of(retiring) == "running":
            self.node.docker_call("soft-stopping proxy %s" % retiring, self.api.kill, retiring, signal="SIGUSR1")
        deadline = time.monotonic() + RETIRE_WAIT
        while self._status_of(retiring) == "running":
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.3)
        self.node.docker_call("removing proxy %s" % retiring, self.api.remove_container, retiring)
        return True

    def _master_log(self, tail: int = 100) -> str:
        """The last lines the proxy's container wrote to stderr: its master's (the access log goes to stdout)."""
        try:
            return self.api.logs(self.node.name, stdout=False, stderr=True, tail=tail).decode("utf-8", "replace")
        except docker.errors.DockerException:
            return ""

    def _status_of(self, container: str) -> str:
        return self.node.docker_call("inspecting proxy %s" % container, self.api.inspect_container, container)["State"]["Status"]
