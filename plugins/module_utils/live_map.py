# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live colors: which color each route sends its requests to, read by HAProxy from a map, so that a switch
that changes nothing else is a change of the running worker's map, with no reload (issue 15: a reload parses
the whole configuration, which grows with the routes; a map swap does not).

- Each route's last rule is ``use_backend be_<service>_%[str(<service>),map(LIVE_MAP_FILE)]``; the map holds
  ``<service> <color>`` a route, and the generation of the whole configuration under GENERATION_KEY. Not ``opt@``:
  HAProxy 3.0 gives each ``opt@`` reference a map of its own, and the runtime API changes only the first of them
  (measured: four rules, four maps); without it every rule reads the one map (proxy_files makes sure it exists).
- The rendered configuration keeps the map's lines as a trailer of comments (MARKER), so the text that
  haproxy.cfg holds, the one that ProxyNode activates and the one a flow compares are one thing: the trailer
  changes with the colors, the rest (``body``) does not.
- The map also holds the body's digest (BODY_KEY) and each route's fingerprint (ROUTE_KEY_PREFIX + service:
  haproxy_config.route_fingerprint, its rules' and backends' input). The generation covers the map (so the body
  through its digest): a switch of one route's color reads the running worker's map alone, and knows from the
  fingerprint whether the worker runs the route as asked, and from the map the generation it will serve; it reads
  no other route and renders nothing (proxy_color_switch), so its cost does not grow with the routes.
- The running worker reports the generation from its map (``get map``): a switch through the runtime API changes
  the colors and the generation in one commit (``prepare map``, ``add map @<version>``, ``commit map @<version>``),
  so what the worker reports is always what it serves (switch_intent settles by it).
- A reloaded or restarted worker reads LIVE_MAP_FILE, which is written from haproxy.cfg's trailer whenever
  haproxy.cfg is installed (proxy_files.RELOAD_SCRIPT_TEXT); a swap sends only the new trailer, which the script
  puts under the body of the file that holds it (``recolor``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import BODY_KEY, LIVE_MAP_FILE

LIVE_MAP_NAME = LIVE_MAP_FILE.rpartition("/")[2]
GENERATION_KEY = ".generation"  # not a service name (config_word refuses the dot at the start)
ROUTE_KEY_PREFIX = ".route."
MARKER = "# live-color "
# Before the map (configurations rendered by earlier releases): the generation was a backend's name.
LEGACY_GENERATION_PREFIX = "be_dockerflow_generation_"
# The runtime API reads one payload into one buffer (tune.bufsize, 16 kB by default): lines go in batches below it.
PAYLOAD_BYTES = 8000

# A backend that no request reaches: it makes the worker load the map even when no route reads it yet.
LOADER_LINES = [
    "",
    "backend be_dockerflow_live_colors",
    "    http-request return status 204 hdr x-flow-generation %%[str(%s),map(%s)]" % (GENERATION_KEY, LIVE_MAP_FILE),
]


def live_backend(service: str) -> str:
    """The backend a route's last rule names: its service's color from the map (``service``: a validated word)."""
    return "be_%s_%%[str(%s),map(%s)]" % (service, service, LIVE_MAP_FILE)


def route_key(service: str) -> str:
    return ROUTE_KEY_PREFIX + service


def digest(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def generation_of(entries: Iterable[tuple[str, str]]) -> str:
    """The generation of a configuration whose map holds ``entries`` (the body's digest among them)."""
    return digest("".join("%s %s\n" % pair for pair in sorted(entries) if pair[0] != GENERATION_KEY))


def trailer(entries: Iterable[tuple[str, str]], generation: str) -> str:
    """The comment lines that carry the map: ``entries`` (key, value) and the generation."""
    pairs = [(GENERATION_KEY, generation)] + sorted(pair for pair in entries if pair[0] != GENERATION_KEY)
    return "".join("%s%s %s\n" % (MARKER, key, value) for key, value in pairs)


@dataclass(frozen=True)
class LiveMap:
    """A live colors' map: its entries by key, the generation among them."""

    entries: dict[str, str]

    @classmethod
    def of_config(cls, config: str | None) -> LiveMap:
        return cls(dict(line.partition(" ")[::2] for line in map_lines(config)))

    @classmethod
    def of_answer(cls, answer: str) -> LiveMap | None:
        """The map the worker lists (``show map``: ``<reference> <key> <value>`` a line), or None if it has none."""
        if not answer.startswith("0x"):
            return None
        return cls(dict(line.split(" ", 2)[1:] for line in answer.splitlines() if line.count(" ") >= 2))

    @property
    def generation(self) -> str | None:
        return self.entries.get(GENERATION_KEY)

    @property
    def body(self) -> str | None:
        """The digest of the body it goes with (None when rendered by an earlier release)."""
        return self.entries.get(BODY_KEY)

    def lines(self) -> list[str]:
        """The map's ``key value`` lines, as the trailer holds them."""
        return map_lines(trailer(self.entries.items(), self.generation or ""))

    def recolored(self, service: str, color: str) -> LiveMap:
        """This map with ``service``'s color changed (and so its generation)."""
        entries = dict(self.entries, **{service: color})
        return LiveMap(dict(entries, **{GENERATION_KEY: generation_of(entries.items())}))


def map_lines(config: str | None) -> list[str]:
    """The map's ``key value`` lines that ``config`` carries (none for a configuration rendered elsewhere)."""
    return [line[len(MARKER):] for line in (config or "").splitlines() if line.startswith(MARKER)]


def map_text(config: str) -> str:
    """LIVE_MAP_FILE as ``config`` wants it."""
    return "".join(line + "\n" for line in map_lines(config))


def body(config: str | None) -> str:
    """``config`` without its map: equal bodies differ only in the colors (and the generation)."""
    return "".join(line for line in (config or "").splitlines(keepends=True) if not line.startswith(MARKER))


def config_generation(config: str | None) -> str | None:
    """The generation a rendered configuration carries, or None (no configuration, or not rendered here)."""
    for line in map_lines(config):
        key, _space, value = line.partition(" ")
        if key == GENERATION_KEY:
            return value
    match = re.search(r"^backend %s([A-Za-z0-9_-]+)$" % LEGACY_GENERATION_PREFIX, config or "", re.MULTILINE)
    return match.group(1) if match else None


def reported_generation(answer: str) -> str | None:
    """The generation in the worker's answer to ``get map LIVE_MAP_FILE GENERATION_KEY``; None when its map has none
    (found=no, or no such map: a configuration rendered elsewhere or by an earlier release)."""
    match = re.search(r'found=yes.*\bvalue="([A-Za-z0-9_-]+)"', answer)
    return match.group(1) if match else None


def generation_command() -> str:
    return "get map %s %s" % (LIVE_MAP_FILE, GENERATION_KEY)


def legacy_generation(backends: Iterable[str]) -> str | None:
    """The generation of a worker that runs an earlier release's configuration, from its backends' names."""
    for name in backends:
        if name.startswith(LEGACY_GENERATION_PREFIX):
            return name[len(LEGACY_GENERATION_PREFIX):]
    return None


def swap(runtime: Callable[[str], str], live: LiveMap) -> None:
    """The running worker's map becomes ``live``, in one commit: no request sees half of it."""
    answer = runtime("prepare map %s" % LIVE_MAP_FILE)
    version = re.search(r"New version created: (\d+)", answer)
    if version is None:
        raise FlowError("HAProxy's runtime API did not prepare a new version of %s: %s" % (LIVE_MAP_NAME, answer.strip()))
    batch: list[str] = []
    size = 0  # of the batch's lines, each with its newline
    for line in live.lines() + [None]:
        if batch and (line is None or size + len(line) > PAYLOAD_BYTES):
            _answered_nothing(runtime("add map @%s %s <<\n%s\n" % (version.group(1), LIVE_MAP_FILE, "\n".join(batch))))
            batch, size = [], 0
        if line is not None:
            batch.append(line)
            size += len(line) + 1
    _answered_nothing(runtime("commit map @%s %s" % (version.group(1), LIVE_MAP_FILE)))


def _answered_nothing(answer: str) -> None:
    """The runtime API answers a map change that worked with an empty line, and anything else with why it did not."""
    if answer.strip():
        raise FlowError("HAProxy's runtime API refused a change of %s: %s" % (LIVE_MAP_NAME, answer.strip()[:200]))
