# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HAProxy container on the proxy host, driven through the Docker API only.

The proxy runs the stock HAProxy image (host network, master-worker mode).
Files go in with ``put_archive``; a new configuration is checked with
``haproxy -c`` inside the container before it replaces the running one; the
runtime API and master CLI listen on the host's loopback and are reached with
``docker exec`` and a small bash helper shipped next to the configuration,
so nothing but the Docker API has to reach the proxy host (proxy_files); a
module that runs on the proxy host itself connects to them (proxy_cli).
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_cli, proxy_container, proxy_limits
from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import local_address
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_sections import socket_address
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import LIVE_MAP_NAME, map_text
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_configuration import (
    MASTER_REEXEC_SECONDS,
    RunningConfiguration,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import (
    CLI_SCRIPT,
    CONFIG_DIR,
    CONFIG_FILE,
    HELPER_FILES,
    PRIVATE_MODE,
    archive,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_replacement import Replacement
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_servers import ServerWatch

try:
    import docker.errors

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by backends.connection.connect
    HAS_DOCKER = False

if TYPE_CHECKING:
    from docker import DockerClient

    from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings

LABEL_PROXY = "dockerflow.proxy"
DEFAULT_IMAGE = "haproxy:3.0"

# Options only a new proxy container applies; drift() reports a running one that differs (proxy_replacement applies them).
DRIFT_OPTIONS = ("proxy_image", "proxy_admin_address", "proxy_master_port", "proxy_nofile")
# Between two reads of a proxy asked over the module's own connection (a few ms a read, proxy_cli): a wait ends
# within this of the change it waits for, where docker exec (~0.1 s a read) keeps each wait's own interval.
DIRECT_POLL_SECONDS = 0.05
# What the master CLI's connection meets while the master re-executes itself (master).
MASTER_REEXEC_ERRORS = ("Connection refused", "Connection reset")


class ProxyNode(ServerWatch, RunningConfiguration):
    """One proxy container; ``client`` is a DockerClient connected to the proxy host."""

    def __init__(self, client: DockerClient, settings: ProxySettings, name: str = "dockerflow-proxy", image: str = DEFAULT_IMAGE,
                 master_port: int = 9998, asked_for: Iterable[str] = (), nofile: int | None = None) -> None:
        self.client = client
        self.api = client.api
        self.settings = settings
        self.name = name
        self.image = image
        self.master_port = master_port
        self.nofile = nofile  # the container's nofile ulimit (proxy_limits); None: the engine's
        self.volume = "%s-config" % name
        self.admin_host = local_address(settings.admin_address)  # where the helper script connects
        self.asked_for = set(asked_for)  # DRIFT_OPTIONS the caller set, which drift() compares
        self.direct: bool | None = None  # whether runtime() and master() connect themselves (proxy_cli); None: not known yet

    # -- container -----------------------------------------------------------------
    def docker_call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, a Docker API call on this proxy (proxy_container, proxy_replacement make
        theirs through it too); its errors as one FlowError naming ``what``."""
        try:
            return function(*args, **kwargs)
        except docker.errors.NotFound as exc:
            raise FlowError("%s: not found (%s)." % (what, exc.explanation or exc))
        except docker.errors.APIError as exc:
            raise FlowError("%s failed: %s." % (what, exc.explanation or exc))
        except docker.errors.DockerException as exc:
            raise FlowError("%s failed: %s." % (what, exc))
        except OSError as exc:
            raise FlowError("Cannot reach the proxy's Docker engine while %s: %s." % (what, exc))

    def inspect(self) -> dict | None:
        try:
            return self.api.inspect_container(self.name)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise FlowError("Inspecting proxy %s failed: %s." % (self.name, exc.explanation or exc))
        except OSError as exc:
            raise FlowError("Cannot reach the proxy's Docker engine: %s." % exc)

    def status(self) -> str | None:
        data = self.inspect()
        return None if data is None else data["State"]["Status"]

    def command(self) -> list[str]:
        return ["haproxy", "-S", socket_address(self.settings.admin_address, self.master_port), "-f", CONFIG_FILE]

    def drift(self) -> list[str]:
        """What the existing container was created with and these settings no longer ask for.

        Only a new container applies those (the master CLI is bound at start, the image and the ulimits are the
        container's): proxy_replacement makes one."""
        data = self.inspect()
        if data is None:
            return []
        found = []
        image = data["Config"].get("Image")
        if "proxy_image" in self.asked_for and image != self.image:
            found.append("runs image %s, not %s (proxy_image)" % (image, self.image))
        command = data["Config"].get("Cmd") or []
        running_cli = command[command.index("-S") + 1] if "-S" in command[:-1] else None
        wanted_cli = self.command()[2]
        if self.asked_for & {"proxy_admin_address", "proxy_master_port"} and running_cli not in (None, wanted_cli):
            found.append("has its master CLI on %s, not %s (proxy_admin_address, proxy_master_port)"
                         % (running_cli, wanted_cli))
        return found + (proxy_limits.drift(data, self.nofile) if "proxy_nofile" in self.asked_for else [])

    def ensure_running(self, initial_config: Callable[[], str], check_mode: bool = False,
                       files: dict[str, str] | None = None, private_files: dict[str, str] | None = None) -> str | None:
        """Create the proxy (with ``initial_config()``, called only then: a render grows with the routes) or start it;
        returns 'created', 'started' or None. ``files`` (name: text, in CONFIG_DIR) and ``private_files`` (mode 0600:
        keys) are written before it starts, or now (not in check mode) if it runs."""
        data = self.inspect()
        if data is not None and data["State"]["Status"] == "running":
            self.write_files(files, private_files, check_mode)
            return None
        files = dict(HELPER_FILES, **(files or {}))
        if check_mode:
            return "created" if data is None else "started"
        if data is None:
            proxy_container.create(self, self.command(), {LABEL_PROXY: "true"}, {"Name": "unless-stopped"})
            files["haproxy.cfg"] = initial_config()
            files[LIVE_MAP_NAME] = map_text(files["haproxy.cfg"])
        self.put_files(files)
        self.put_files(private_files or {}, mode=PRIVATE_MODE)
        outcome = "created" if data is None else "started"
        proxy_container.start(self, created=data is None)
        self.wait_ready()
        return outcome

    def write_files(self, files: dict[str, str] | None = None, private_files: dict[str, str] | None = None,
                    check_mode: bool = False) -> None:
        """The helper scripts, ``files`` and ``private_files`` (mode 0600) into the running proxy; only the scripts
        in check mode."""
        self.put_files(dict(HELPER_FILES, **(files or {})) if not check_mode else HELPER_FILES)
        if not check_mode:
            self.put_files(private_files or {}, mode=PRIVATE_MODE)

    def replacement(self) -> Replacement:
        """How a new container with these settings takes over from this one (proxy_replacement)."""
        return Replacement(self)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            data = self.inspect()
            if data and data["State"]["Status"] in ("exited", "dead"):
                break
            try:
                answer = self.runtime("show info")
                if "Pid:" in answer:
                    return
                last = answer
            except FlowError as error:
                last = error.msg
            self.pause(0.3)
        logs = self.logs()
        raise FlowError("Proxy %s did not come up: %s %s" % (self.name, last.strip()[:200], logs[-300:]))

    def logs(self, tail: int = 20) -> str:
        try:
            return self.api.logs(self.name, tail=tail).decode("utf-8", "replace")
        except docker.errors.DockerException:
            return ""

    # -- files and commands ------------------------------------------------------------
    def put_files(self, files: dict[str, str], mode: int | None = None) -> None:
        """``files`` (name: text) into CONFIG_DIR, with ``mode`` (proxy_files.archive)."""
        if files:
            self.docker_call("writing files into proxy %s" % self.name, self.api.put_archive, self.name, CONFIG_DIR,
                             archive(files, mode))

    def read_file(self, path: str) -> str | None:
        try:
            chunks, _stat = self.api.get_archive(self.name, path)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise FlowError("Reading %s from proxy %s failed: %s." % (path, self.name, exc.explanation or exc))
        stream = io.BytesIO(b"".join(chunks))
        with tarfile.open(fileobj=stream) as tar:
            member = tar.getmembers()[0]
            return tar.extractfile(member).read().decode("utf-8")

    def exec(self, command: list[str]) -> tuple[int, str]:
        """Run ``command`` in the proxy container; returns (exit code, output)."""
        created = self.docker_call("running a command in proxy %s" % self.name, self.api.exec_create, self.name, command)
        output = self.docker_call("running a command in proxy %s" % self.name, self.api.exec_start, created["Id"])
        code = self.api.exec_inspect(created["Id"])["ExitCode"]
        return code, output.decode("utf-8", "replace")

    def pause(self, seconds: float) -> None:
        """Sleep between two reads of the proxy: ``seconds``, or less when a read is cheap (DIRECT_POLL_SECONDS)."""
        time.sleep(min(seconds, DIRECT_POLL_SECONDS) if self.direct else seconds)

    def runtime(self, command: str) -> str:
        return self._ask(self.settings.admin_port, command, "runtime API")

    def master(self, command: str) -> str:
        """The master CLI's answer. HAProxy 3.0's master re-executes itself after it started a worker (at its start
        and at each reload), and refuses or drops connections meanwhile: those are asked again, for a few seconds."""
        deadline = time.monotonic() + MASTER_REEXEC_SECONDS
        while True:
            try:
                return self._ask(self.master_port, command, "master CLI")
            except FlowError as error:
                if not any(word in error.msg for word in MASTER_REEXEC_ERRORS) or time.monotonic() >= deadline:
                    raise
            self.pause(0.05)

    def newest_worker(self, command: str) -> str:
        """``command`` to the newest worker, through the master CLI (``@1``). Right after a reload the runtime API's
        port can still reach the leaving worker: a map swapped there would be lost with it (live_map). ``@1`` names
        the process of one command: each of several (``;``) gets its own (the master runs the others itself)."""
        if "<<" in command:  # a payload: one command, whose lines are data
            return self.master("@1 " + command)
        return self.master(";".join("@1 " + part for part in command.split(";")))

    def _ask(self, port: int, command: str, what: str) -> str:
        """HAProxy's answer to ``command`` on ``port``: over a connection of this process's own when it runs on the
        proxy host (proxy_cli), else with the helper script in the container."""
        if self.direct is None:
            self.direct = proxy_cli.reaches_directly(self.api.base_url, self.inspect, self.admin_host, self.settings.admin_port)
        if self.direct:
            try:
                return proxy_cli.ask(self.admin_host, port, command)
            except OSError as exc:
                raise FlowError("HAProxy's %s of %s (%s port %d) did not answer %r: %s"
                                % (what, self.name, self.admin_host, port, command, exc))
        code, output = self.exec(["bash", CLI_SCRIPT, str(port), command, self.admin_host])
        if code != 0:
            raise FlowError("HAProxy's %s in %s did not answer %r: %s" % (what, self.name, command, output.strip()[:200]))
        return output
