# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the proxy's running worker runs, and how a new configuration (``haproxy -c`` and a hitless reload) or new
live colors (its map: live_map) get there, all or nothing. ProxyNode has these.

What runs is what the running worker reports (the generation in its live colors' map), never haproxy.cfg alone: a
run killed between installing a file and loading it leaves a file that never served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal

from ansible_collections.dockerflow.flow.plugins.module_utils import proxy_limits
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import (
    LIVE_MAP_FILE,
    LiveMap,
    config_generation,
    generation_command,
    legacy_generation,
    reported_generation,
    swap,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import failed_reloads
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import (
    CHECK_REFUSED_EXIT,
    CONFIG_FILE,
    NOT_RUNNING_FILE_EXIT,
    PREVIOUS_FILE,
    RELOAD_SCRIPT,
    ConfigRefused,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_part import ProxyPart

# How long the master CLI may refuse connections or answer nothing while the master re-executes itself.
MASTER_REEXEC_SECONDS = 5
# What a failed run of the reload script was doing, by its step (_reload).
RELOAD_STEP_NAMES = {None: "Reloading HAProxy", "save": "Saving the servers' state",
                     "install": "Installing the new HAProxy configuration and reloading",
                     "place": "Installing the HAProxy configuration",
                     "recolor": "Installing the new live colors in the HAProxy configuration"}


class RunningConfiguration(ProxyPart):
    """The configuration part of proxy_node.ProxyNode."""

    def current_config(self) -> str | None:
        return self.read_file(CONFIG_FILE)

    def _answered(self, ask: Callable[[], str]) -> str:
        """``ask()``'s answer, asked again while it is empty: dropped without a word by the re-executing master."""
        deadline, answer = time.monotonic() + MASTER_REEXEC_SECONDS, ask()
        while not answer.strip() and time.monotonic() < deadline:
            self.pause(0.05)
            answer = ask()
        return answer

    def running_generation(self) -> str | None:
        """The generation the running worker reports (live_map), or None when it runs a configuration rendered elsewhere."""
        answer = self._answered(lambda: self.newest_worker(generation_command()))
        generation = reported_generation(answer)
        if generation is None and answer.startswith("Unknown map"):
            return legacy_generation(self.backends())
        return generation

    def reports_generation(self, generation: str, within: float = 5.0, failed_before: int | None = None) -> bool:
        """Whether the running worker reports ``generation`` within ``within`` seconds. Right after a reload a
        query can still reach the worker that is leaving (the runtime socket passes to the new worker through
        ``expose-fd listeners``; the old one answers until it has unbound), so one stale answer is no verdict.
        With ``failed_before`` (the master's failed reloads before ours), a failed reload ends it in FlowError."""
        deadline = time.monotonic() + within
        while self._running_generation_or_none() != generation:  # None: the new worker may not listen yet
            failed = self.failed_reloads() if failed_before is not None else None
            if failed is not None and failed > failed_before:
                alerts = [line.strip() for line in self.logs(tail=30).splitlines() if "ALERT" in line]
                raise FlowError("HAProxy could not start a worker with the new configuration: %s"
                                % (" | ".join(alerts[-2:]) or "see the proxy's log"))
            if time.monotonic() >= deadline:
                return False
            self.pause(0.2)
        return True

    def serving_generation(self) -> str | None:
        """The generation this proxy serves: its running worker's; a stopped container's is the file it starts
        with; None without a container."""
        status = self.status()
        if status is None:
            return None
        if status == "running":
            return self.running_generation()
        return config_generation(self.current_config())

    def running_config(self) -> str | None:
        """The text of the configuration the running worker reports: haproxy.cfg or the copy the last activation
        kept. None when neither holds it: then the file is not the truth."""
        generation = self.running_generation()
        if generation is None:
            return None
        for path in (CONFIG_FILE, PREVIOUS_FILE):
            text = self.read_file(path)
            if config_generation(text) == generation:
                return text
        return None

    def backends(self) -> set[str]:
        return {line.strip() for line in self.runtime("show backend").splitlines() if line.strip() and not line.startswith("#")}

    def running_map(self) -> LiveMap | None:
        """The running worker's live colors' map (live_map), or None when it has none (an earlier release's)."""
        return LiveMap.of_answer(self._answered(lambda: self.newest_worker("show map %s" % LIVE_MAP_FILE)))

    def swaps(self, config: str, running: str | None) -> bool:
        """Whether activate() takes ``config`` by a swap of the live colors' map: only they differ from ``running``."""
        body = LiveMap.of_config(config).body
        return running is not None and body is not None and LiveMap.of_config(running).body == body

    def activate(self, config: str, generation: str, timeout: float = 30, running: str | bool | None = False) -> bool:
        """Install ``config`` and load it; returns once the running worker reports ``generation``. When only the live
        colors differ from what runs, the worker's map takes them (recolor; returns True); else ``haproxy -c``
        checks it and a hitless reload loads it (False).

        All or nothing: when no new worker comes up with it, the configuration that ran before (``running`` when
        the caller read it under the proxy's lock, else read now) goes back into haproxy.cfg (and is loaded again
        if the worker no longer runs it), and FlowError says so."""
        previous = self.running_config() if running is False else running
        if self.swaps(config, previous):
            self.recolor(LiveMap.of_config(config), LiveMap.of_config(previous), timeout)
            return True
        self.put_files(dict({"haproxy.cfg.previous": previous} if previous is not None else {}, **{"haproxy.cfg.new": config}))
        failed_before = self.failed_reloads()
        try:
            self._reload("install")  # haproxy -c first: ConfigRefused if it refuses (nothing installed)
            self._wait_for_generation(generation, timeout, failed_before)
        except ConfigRefused:
            raise
        except FlowError as error:
            hint = proxy_limits.short_of_descriptors(error.msg)
            raise FlowError("%s%s %s" % (error.msg, hint, self._put_back(previous, timeout)))
        return False

    def recolor(self, live: LiveMap, previous: LiveMap, timeout: float = 30) -> None:
        """The running worker's map becomes ``live``, which goes with the body of ``previous`` (the map it runs):
        haproxy.cfg and its map file first (only the map's lines are sent), then the worker's map in one commit
        (live_map.swap). All or nothing, as activate()."""
        self._reload("recolor", [live.body or ""] + live.lines())  # when it fails, the worker's map is as it was
        try:
            swap(self.newest_worker, live)
            self._wait_for_generation(live.generation or "", timeout)
        except FlowError as error:
            raise FlowError("%s %s" % (error.msg, self._put_back_colors(previous, timeout)))

    def connection_warning(self, config: str) -> str | None:
        """A warning when ``config``, which the worker runs, leaves it few connections for its server slots."""
        return proxy_limits.short_of_connections(proxy_limits.server_slots(config), lambda: self.runtime("show info"),
                                                 self.name)

    def _install(self, config: str) -> None:
        """``config`` over haproxy.cfg (and its live colors' map), by a rename of the candidate (not loaded: the
        callers decide)."""
        self.put_files({"haproxy.cfg.new": config})
        self._reload("place")

    def _reload(self, step: Literal["install", "save", "place", "recolor"] | None = None, arguments: Iterable[str] = ()) -> None:
        """A hitless reload, the servers' state saved first for the new worker; ``step`` "save": only that,
        "install": the candidate put_files() left checked (ConfigRefused) and moved over haproxy.cfg first,
        "place": only moved, no reload, "recolor": the map's lines (``arguments``) written under the running body,
        no reload (proxy_files.RELOAD_SCRIPT_TEXT)."""
        code, output = self.exec(["bash", RELOAD_SCRIPT, str(self.settings.admin_port), self.settings.server_state_file,
                                  self.admin_host] + ([step] if step else []) + list(arguments))
        if code == CHECK_REFUSED_EXIT and step == "install":
            raise ConfigRefused(output)
        if code == NOT_RUNNING_FILE_EXIT and step == "recolor":
            raise FlowError("%s failed: %s; flow_proxy state=synced installs it again."
                            % (RELOAD_STEP_NAMES[step], output.strip()))
        if code != 0:
            raise FlowError("%s failed: %s" % (RELOAD_STEP_NAMES[step], output.strip()[:300]))

    def save_server_state(self) -> None:
        """The servers' addresses and states into the state file, for a worker that starts without a reload."""
        self._reload("save")

    def _wait_for_generation(self, generation: str, timeout: float, failed_before: int | None = None) -> None:
        if not self.reports_generation(generation, timeout, failed_before):
            raise FlowError("HAProxy did not load the new configuration within %ds: %s" % (timeout, self.logs()[-300:]))

    def _put_back(self, previous: str | None, timeout: float) -> str:
        """After a failed activation: haproxy.cfg holds ``previous`` again, and the worker runs it."""
        if previous is None:
            return "The configuration that ran before is not known (the file was not the running one), so it was not restored."
        generation = config_generation(previous)
        try:
            self._install(previous)
            if self._running_generation_or_none() != generation:
                self._reload()
                self._wait_for_generation(generation, timeout)
        except FlowError as error:
            return "Restoring the previous configuration failed too: %s" % error.msg
        return "The previous configuration was restored."

    def _put_back_colors(self, previous: LiveMap, timeout: float) -> str:
        """After a failed recolor: haproxy.cfg and the worker's map hold ``previous`` again."""
        try:
            self._reload("recolor", [previous.body or ""] + previous.lines())
            if self._running_generation_or_none() != previous.generation:
                swap(self.newest_worker, previous)
                self._wait_for_generation(previous.generation or "", timeout)
        except FlowError as error:
            return "Restoring the previous configuration failed too: %s" % error.msg
        return "The previous configuration was restored."

    def _running_generation_or_none(self) -> str | None:
        try:
            return self.running_generation()
        except FlowError:
            return None

    def restore_running_file(self) -> bool:
        """haproxy.cfg back to the running worker's configuration when it holds another (a run killed between
        installing a file and its reload): a restart of the proxy would load what never served. True if it did."""
        if config_generation(self.current_config()) == self.running_generation():
            return False
        previous = self.running_config()
        if previous is None:
            return False
        self._install(previous)
        return True

    def failed_reloads(self) -> int | None:
        """The master's count of failed reloads since the last good one, or None if unknown."""
        try:
            return failed_reloads(self.master("show proc"))
        except FlowError:
            return None
