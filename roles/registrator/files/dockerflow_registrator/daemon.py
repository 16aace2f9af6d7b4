# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon: keeps this node's entries in the agent equal to what the running containers map
to, from the engine's events as they come and by a full resync on (re)connect and periodically."""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.labels import LABEL_REGISTER_PORT, LABEL_SERVICE

from .consul_agent import ConsulAgent
from .containers import map_container
from .docker_engine import DockerAPI, EventStream
from .entries import META_CONTAINER, META_CONTAINER_ID, META_REGISTRATOR, META_SPEC, Mapping, ServiceEntry
from .flow_instances import flow_repairs
from .settings import Settings

DEFAULT_RESYNC = 30


def log(message: str) -> None:
    sys.stdout.write("%s registrator: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message))
    sys.stdout.flush()


def event_container(event: dict[str, Any]) -> tuple[str | None, str]:
    actor = event.get("Actor") or {}
    return actor.get("ID") or event.get("id"), event.get("Action") or event.get("status") or ""


class Registrator:
    """Keeps this node's entries in the agent equal to what the running containers map to."""

    def __init__(self, docker: DockerAPI, consul: ConsulAgent, settings: Settings, resync_interval: int = DEFAULT_RESYNC,
                 logger: Callable[[str], None] = log) -> None:
        self.docker = docker
        self.consul = consul
        self.settings = settings
        self.resync_interval = resync_interval
        self.log = logger
        self.queue: queue.Queue[tuple[int, str, Any] | None] = queue.Queue()
        self.next_resync = 0.0
        self._warned: dict[str, tuple[str, ...]] = {}  # container ID -> the warnings last logged for it

    # -- reconciliation ----------------------------------------------------------------
    def owned(self, container_id: str | None = None) -> dict[str, dict[str, Any]]:
        """This node's entries in the agent (of one container when given)."""
        owned = {}
        for service_id, entry in self.consul.services().items():
            meta = entry.get("Meta") or {}
            if meta.get(META_REGISTRATOR) != self.settings.node:
                continue
            if container_id is not None and meta.get(META_CONTAINER_ID) != container_id:
                continue
            owned[service_id] = entry
        return owned

    def _map(self, inspect: dict[str, Any]) -> Mapping:
        mapping = map_container(inspect, self.settings)
        container_id = inspect.get("Id", "")
        warnings = tuple(mapping.warnings)
        if warnings and self._warned.get(container_id) != warnings:
            for warning in warnings:
                self.log("warning: container %s: %s" % ((inspect.get("Name") or "").lstrip("/"), warning))
        self._warned[container_id] = warnings
        return mapping

    def _apply(self, desired: dict[str, ServiceEntry], existing: dict[str, dict[str, Any]],
               why: str = "") -> tuple[list[ServiceEntry], list[str]]:
        registered, removed = [], []
        for service_id, entry in desired.items():
            current = existing.get(service_id)
            if current is not None and (current.get("Meta") or {}).get(META_SPEC) == entry.fingerprint():
                continue
            self.consul.register(entry.payload())
            registered.append(entry)
            self.log("registered %s as %s at %s:%d%s%s" % (
                entry.service_id, entry.name, entry.address, entry.port,
                " tags=%s" % ",".join(entry.tags) if entry.tags else "",
                " check=%s" % _check_text(entry.check) if entry.check else ""))
        for service_id in existing:
            if service_id not in desired:
                self.consul.deregister(service_id)
                removed.append(service_id)
                self.log("deregistered %s%s" % (service_id, why))
        return registered, removed

    def _repair(self, inspect: dict[str, Any], services: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Re-register the flow's entries of a container that publishes a new host port now."""
        payloads = flow_repairs(inspect, services)
        for payload in payloads:
            self.consul.register(payload)
            self.log("repaired %s: port %s -> %d (container %s started again on a new host port)" % (
                payload["ID"], (services.get(payload["ID"]) or {}).get("Port"), payload["Port"], payload["Meta"][META_CONTAINER]))
        return payloads

    def sync_container(self, container_id: str) -> tuple[list[Any], list[str]]:
        """Register or deregister one container's entries from its current state."""
        inspect = self.docker.inspect(container_id)
        desired = {}
        if inspect is not None:
            mapping = self._map(inspect)
            desired = {entry.service_id: entry for entry in mapping.entries}
        else:
            self._warned.pop(container_id, None)
        existing = self.owned(container_id)
        registered, removed = self._apply(desired, existing)
        if inspect is not None and LABEL_SERVICE in ((inspect.get("Config") or {}).get("Labels") or {}):
            return registered + self._repair(inspect, self.consul.services()), removed
        return registered, removed

    def resync(self) -> dict[str, Any]:
        """Register every running container; deregister this node's dangling entries."""
        started = time.monotonic()
        desired: dict[str, ServiceEntry] = {}
        repaired = 0
        running = self.docker.running_container_ids()
        services = self.consul.services()
        for container_id in running:
            inspect = self.docker.inspect(container_id)
            if inspect is None:
                continue
            repaired += len(self._repair(inspect, services))
            for entry in self._map(inspect).entries:
                if entry.service_id in desired:
                    self.log("warning: service ID %s is claimed by %s and %s; keeping the latter" % (
                        entry.service_id, desired[entry.service_id].container, entry.container))
                desired[entry.service_id] = entry
        self._warned = {cid: warned for cid, warned in self._warned.items() if cid in running}
        registered, removed = self._apply(desired, self.owned(), " (dangling)")
        return {"containers": len(running), "registrations": len(desired), "registered": len(registered),
                "removed": len(removed), "repaired": repaired, "seconds": time.monotonic() - started}

    # -- events ------------------------------------------------------------------------
    def relevant(self, event: dict[str, Any]) -> bool:
        """False for events of containers that can have no entries of ours, judged by the labels
        the engine copies into the event (labels never change): no inspect, no Consul call."""
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if LABEL_SERVICE in attributes:
            # A plain flow instance that starts again may publish a new port: its flow entry needs repair.
            return LABEL_REGISTER_PORT in attributes or event_container(event)[1] in ("start", "unpause")
        return not attributes or self.settings.wants(attributes)

    def handle_event(self, event: dict[str, Any]) -> None:
        container_id, action = event_container(event)
        if not container_id or not self.relevant(event):
            return
        try:
            registered, removed = self.sync_container(container_id)
        except Exception as exc:
            self.log("%s of %s: %s; resyncing soon" % (action, container_id[:12], _error_text(exc)))
            self.next_resync = min(self.next_resync, time.monotonic() + 2)
            return
        if (registered or removed) and event.get("timeNano"):
            latency = time.time() - int(event["timeNano"]) / 1e9
            self.log("%s of %s handled %.3fs after the event" % (action, container_id[:12], latency))

    # -- the loop ----------------------------------------------------------------------
    def _resync_logged(self, first: bool = False) -> bool:
        try:
            summary = self.resync()
        except Exception as exc:  # a daemon keeps going: Consul or the engine may come back
            self.log("resync failed: %s" % _error_text(exc))
            self.next_resync = time.monotonic() + min(5, self.resync_interval)
            return False
        if first or summary["registered"] or summary["removed"] or summary["repaired"]:
            self.log("resync: %(containers)d running containers, %(registrations)d registrations "
                     "(%(registered)d registered, %(removed)d removed, %(repaired)d flow entries repaired) "
                     "in %(seconds).3fs" % summary)
        self.next_resync = time.monotonic() + self.resync_interval
        return True

    def wake(self) -> None:
        self.queue.put(None)

    def _pump(self, stream: EventStream, generation: int) -> None:
        try:
            for event in stream:
                self.queue.put((generation, "event", event))
            self.queue.put((generation, "end", "the engine closed the event stream"))
        except Exception as exc:
            self.queue.put((generation, "end", _error_text(exc)))

    def _announce(self) -> None:
        self.log("ready: watching Docker events on %s (API %s), node %s, Consul %s" % (
            self.docker.url, self.docker.api_version or "unversioned", self.settings.node, self.consul.address))

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: watch events, resync on (re)connect and periodically."""
        generation, backoff, ready = 0, 1, False
        while not stop.is_set():
            try:
                stream = self.docker.events()
            except Exception as exc:
                self.log("cannot watch Docker events: %s; retrying in %ds" % (_error_text(exc), backoff))
                stop.wait(backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1
            generation += 1
            threading.Thread(target=self._pump, args=(stream, generation), name="docker-events", daemon=True).start()
            # The stream is open before the resync reads the containers: nothing falls between.
            self.next_resync = 0.0
            ready = self._follow(generation, stop, ready)
            stream.close()
        self.log("stopped")

    def _follow(self, generation: int, stop: threading.Event, ready: bool) -> bool:
        """Handle the events of stream ``generation``, resyncing when due, until it ends or ``stop`` is set;
        returns whether the first resync was done (``ready``)."""
        while not stop.is_set():
            if time.monotonic() >= self.next_resync:
                if self._resync_logged(first=not ready) and not ready:
                    ready = True
                    self._announce()
                continue
            try:
                item = self.queue.get(timeout=max(0.0, self.next_resync - time.monotonic()))
            except queue.Empty:
                continue
            if item is None or item[0] != generation:
                continue
            if item[1] == "event":
                self.handle_event(item[2])
            else:
                self.log("Docker event stream ended (%s); reconnecting" % item[2])
                break
        return ready


def _check_text(check: dict[str, Any]) -> str:
    for kind in ("HTTP", "TCP", "TTL"):
        if kind in check:
            return "%s %s" % (kind, check[kind])
    return "?"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, FlowError):
        return str(exc)
    return "%s: %s (%s)" % (exc.__class__.__name__, exc, traceback.format_exc(limit=-3).strip().replace("\n", " | "))
