# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-service lock at ``dockerflow/locks/<service>``, held through a Consul session, so two flows
on one service never interleave; and who holds it (``who_am_i``), which release records name too."""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import KV_PREFIX, ConsulClient
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    import consul
except ImportError:  # pragma: no cover - ConsulClient reports it
    pass


def lock_key(service: str) -> str:
    return "%s/locks/%s" % (KV_PREFIX, service)


def who_am_i() -> str:
    """``user@host (pid N)``: what a lock and a release record say about their author."""
    try:
        user = getpass.getuser()
    except Exception:  # getuser raises several types when no user name can be found
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return "%s@%s" % (user, socket.gethostname())


class LockLost(FlowError):
    """This run no longer holds its lock: another run may hold it and change the same service."""


class ServiceLock:
    """A Consul session lock on one service, so two flows on it never interleave.

    The session has a TTL that a background thread renews: if the process
    holding the lock dies, the lock is released once the TTL runs out (Consul
    allows up to twice the TTL) and Consul's lock-delay passes. A clean release
    empties the holder record; a run that never released its lock (killed, or cut
    off from Consul) leaves it behind, and the next run reports whose lock expired
    (``on_abandoned(holder, seconds waited)``).

    A held lock can still be lost: Consul invalidates the session when it was not
    renewed within its TTL (Consul out of reach for that long), or someone destroys
    it. The renewal notices a session Consul no longer knows; ``confirm`` (one read
    of the lock key) notices that and a key another session holds now. The holder
    confirms before every change it makes, and its state writes check the session
    in the same transaction (StateStore's ``fence``).
    """

    def __init__(self, client: ConsulClient, service: str, timeout: float = 300, ttl: int = 30, lock_delay: int = 5,
                 operation: str = "flow", on_wait: Callable[[str | None], None] | None = None,
                 on_abandoned: Callable[[str, float], None] | None = None) -> None:
        self.client = client
        self.service = service
        self.timeout = timeout
        self.ttl = ttl
        self.lock_delay = lock_delay
        self.operation = operation
        self.on_wait = on_wait
        self.on_abandoned = on_abandoned
        self.session: str | None = None
        self.held = False
        self.waited = 0.0
        self.confirmed_at: float | None = None  # wall time the session was last known to hold the lock
        self.lost_reason: str | None = None  # set by the renewal when Consul no longer knows the session
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def holder_record(self) -> dict:
        return {
            "holder": who_am_i(),
            "pid": os.getpid(),
            "operation": self.operation,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _read(self, **blocking: Any) -> tuple[str, dict | None]:
        """(index, entry) of the lock key; ``index`` and ``wait`` make it a blocking query."""
        return self.client.call("reading the lock of %s" % self.service, self.client.api.kv.get, lock_key(self.service),
                                **blocking)

    def describe_holder(self, entry: dict | None = None) -> str | None:
        """Who holds the lock (from ``entry``, else read now); None when no session holds it."""
        if entry is None:
            _index, entry = self._read()
        if not entry or not entry.get("Session"):
            return None
        return _describe_holder(entry)

    def __enter__(self) -> ServiceLock:
        api = self.client.api
        self.session = self.client.call(
            "creating a lock session",
            api.session.create,
            name="dockerflow-%s-%s" % (self.operation, self.service),
            behavior="release",
            ttl=self.ttl,
            lock_delay=self.lock_delay,
        )
        self._renewer = threading.Thread(target=self._renew, name="dockerflow-lock-renew", daemon=True)
        self._renewer.start()
        started = time.monotonic()
        record = json.dumps(self.holder_record())
        try:
            index, entry = self._read()
            while True:
                acquired = self.client.call(
                    "taking the lock of %s" % self.service, api.kv.put, lock_key(self.service), record, acquire=self.session
                )
                if acquired:
                    self.held = True
                    self.confirmed_at = time.time()
                    self.waited = time.monotonic() - started
                    # ``entry`` is the key as read just before this acquire: what the previous holder left.
                    if self.on_abandoned and entry and not entry.get("Session") and entry.get("Value"):
                        self.on_abandoned(_describe_holder(entry), self.waited)
                    return self
                index, entry = self._read()
                remaining = self.timeout - (time.monotonic() - started)
                holder = self.describe_holder(entry)
                if remaining <= 0:
                    raise FlowError(
                        "Service %s is locked by %s; gave up after waiting %ds (lock_timeout)."
                        % (self.service, holder or _lock_delay_holder(entry), self.timeout)
                    )
                if self.on_wait:
                    self.on_wait(holder)
                # A blocking query returns when the lock key changes; lock-delay after a
                # holder died does not change it, hence the short cap.
                index, entry = self._read(index=index, wait="%ds" % max(1, min(5, int(remaining))))
        except BaseException:
            self._release()
            raise

    def _renew(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl / 3.0)):
            try:
                renewed = self.client.api.session.renew(self.session)
            except consul.NotFound:
                renewed = None
            except Exception:  # out of reach: the next confirm or fenced write decides
                continue
            if not renewed:
                self.lost_reason = ("Consul no longer knows its session %s (renewal refused at %s: destroyed, or "
                                    "expired while Consul was out of reach)" % (self.session, _utc(time.time())))
                return
            if self.held:
                self.confirmed_at = time.time()

    def confirm(self, doing: str) -> None:
        """Raise LockLost unless this run still holds the lock (``doing``: what it was about to do).

        Cheap: no call when the renewal already knows the session is gone, else one read of the lock key.
        """
        entry = None
        if self.lost_reason is None:
            _index, entry = self._read()
            if entry and entry.get("Session") == self.session:
                self.confirmed_at = time.time()
                return
        raise self.lost(doing, entry)

    def lost(self, doing: str, entry: dict | None = None) -> LockLost:
        """The LockLost error to raise: which lock, since when it is unconfirmed, and who may hold it now."""
        if entry is None:
            try:
                _index, entry = self._read()
            except FlowError:  # the message can do without the holder
                entry = None
        holder = self.describe_holder(entry) if entry else None
        reason = self.lost_reason or ("another session holds the key now" if holder else "no session holds the key now")
        since = (" It was last confirmed at %s, %.0fs before."
                 % (_utc(self.confirmed_at), time.time() - self.confirmed_at)) if self.confirmed_at else ""
        return LockLost(
            "Lost the lock of %s (Consul key %s, session %s) before %s: %s.%s Another run may hold it now%s; "
            "this run stopped."
            % (self.service, lock_key(self.service), self.session, doing, reason, since,
               (": " + holder) if holder else "")
        )

    def _release(self) -> None:
        self._stop.set()
        self.held = False
        if self.session is None:
            return
        release_session(self.client, self.service, self.session)
        self.session = None

    def detach(self) -> str:
        """Keep the lock held past this process (no renewal: its session's TTL bounds it) and return the session,
        for ``release_session`` in a later process (module acme_lock holds a lock across tasks)."""
        self._stop.set()
        session, self.session = self.session, None
        return session

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        self._release()
        return False


def release_session(client: ConsulClient, service: str, session: str) -> None:
    """Release ``service``'s lock held by ``session`` and destroy the session; best effort."""
    try:
        client.api.kv.put(lock_key(service), None, release=session)
    except Exception:  # best effort: destroying the session releases the lock too
        pass
    try:
        client.api.session.destroy(session)
    except Exception:  # the TTL expires it otherwise
        pass


def _describe_holder(entry: dict) -> str:
    """``user@host (operation, pid N, since T[, session S])`` from a lock entry's holder record."""
    try:
        record = json.loads(entry.get("Value") or b"{}")
    except ValueError:
        record = {}
    session = (", session %s" % entry["Session"]) if entry.get("Session") else ""
    return "%s (%s, pid %s, since %s%s)" % (
        record.get("holder", "unknown"), record.get("operation", "?"), record.get("pid", "?"), record.get("since", "?"), session,
    )


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _lock_delay_holder(entry: dict | None) -> str:
    if entry and entry.get("Value"):
        return "%s, which ended without releasing it (Consul's lock-delay has not passed yet)" % _describe_holder(entry)
    return "a session whose lock-delay has not passed yet"
