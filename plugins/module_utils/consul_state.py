# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service state in Consul KV: one JSON document a service, written with check-and-set,
and a per-service lock held through a Consul session.

The document lives at ``dockerflow/services/<service>`` and the lock at
``dockerflow/locks/<service>``. Writes never overwrite blindly: each one
names the ModifyIndex it read, and a conflicting write is retried on fresh
data, so a concurrent writer (a proxy recording routes, say) is never lost.
"""

from __future__ import annotations

import base64
import copy
import getpass
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    import consul
    import requests

    HAS_CONSUL = True
    CONSUL_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_CONSUL = False
    CONSUL_IMPORT_ERROR = str(exc)

KV_PREFIX = "dockerflow"
STATE_SCHEMA = 1
RELEASE_HISTORY_LIMIT = 20
CAS_ATTEMPTS = 10
_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


def state_key(service):
    return "%s/services/%s" % (KV_PREFIX, service)


def lock_key(service):
    return "%s/locks/%s" % (KV_PREFIX, service)


def who_am_i():
    """``user@host (pid N)``: what a lock and a release record say about their author."""
    try:
        user = getpass.getuser()
    except Exception:  # getuser raises several types when no user name can be found
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return "%s@%s" % (user, socket.gethostname())


def empty_state(service):
    return {
        "schema": STATE_SCHEMA,
        "service": service,
        "live_color": None,
        "deployed_color": None,
        "next_release": 1,
        "colors": {},
        "releases": [],
        "routes": {},
    }


class ConsulClient:
    """A py-consul client whose failures become FlowErrors naming the Consul address."""

    def __init__(self, address, token=None, ca_cert=None, client_cert=None, client_key=None, validate_certs=True, timeout=10):
        if not HAS_CONSUL:
            raise FlowError("The py-consul and requests Python packages are required: %s." % CONSUL_IMPORT_ERROR)
        self.address = address
        text = address if "//" in address else "http://" + address
        try:
            parsed = urlparse(text)
            hostname = parsed.hostname
        except ValueError:  # a bracketed host that is no IPv6 address, say
            hostname = parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not hostname or not _HOST_RE.match(hostname):
            raise FlowError("consul_address=%r is not valid: expected http(s)://HOST:PORT." % address)
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 8500)
        except ValueError:
            raise FlowError("consul_address=%r has an invalid port." % address)
        if token and not all("!" <= char <= "~" for char in token):
            # An HTTP header carries it: say what is wrong without repeating a secret.
            raise FlowError("consul_token is not valid: a Consul token is printable ASCII without spaces (its SecretID).")
        if client_cert and not client_key:
            raise FlowError("consul_client_cert is set but consul_client_key is not: both are needed.")
        for parameter, path in (("consul_ca_cert", ca_cert), ("consul_client_cert", client_cert),
                                ("consul_client_key", client_key)):
            if path and not os.path.isfile(path):
                raise FlowError("%s %s is not a file." % (parameter, path))
        verify = ca_cert if (ca_cert and validate_certs) else bool(validate_certs)
        cert = (client_cert, client_key) if client_cert else None
        self.api = consul.Consul(
            host=parsed.hostname, port=port, scheme=parsed.scheme, token=token or None, verify=verify, cert=cert,
            connections_timeout=timeout,
        )

    def call(self, what, function, *args, **kwargs):
        """Run one API call; translate transport and ACL errors into one-line messages."""
        try:
            return function(*args, **kwargs)
        except consul.ACLPermissionDenied as exc:
            if "ACL not found" in str(exc):
                raise FlowError(
                    "Consul at %s rejected the ACL token (consul_token) while %s: ACL not found, no such token."
                    % (self.address, what)
                )
            raise FlowError(
                "Consul at %s denied %s (permission denied): the ACL token (consul_token) lacks the permission."
                % (self.address, what)
            )
        except requests.exceptions.SSLError as exc:
            raise FlowError("TLS to Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach Consul at %s (consul_address) while %s." % (self.address, what))
        except requests.exceptions.Timeout:
            raise FlowError("Consul at %s timed out while %s." % (self.address, what))
        except requests.exceptions.RequestException as exc:
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except OSError as exc:  # requests reads the TLS files only when it connects
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except consul.ConsulException as exc:
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))

    def transaction(self, what: str, operations: list) -> list:
        """Apply KV ``operations`` atomically (``/v1/txn``): [] when applied, else Consul's errors
        (``{"OpIndex": i, "What": text}``) and nothing was applied.

        The request is built here because py-consul's ``Txn.put`` sends no ACL token.
        """
        return self.call(what, self.api.http.put, _transaction_errors, "/v1/txn", data=json.dumps(operations),
                         headers=self.api.prepare_headers())

    def ping(self):
        leader = self.call("asking for the cluster leader", self.api.status.leader)
        if not leader:
            raise FlowError("Consul at %s has no cluster leader; state cannot be written." % self.address)
        return leader


def _transaction_errors(response) -> list:
    """The errors of a ``/v1/txn`` answer: 200 applied, 409 rolled back; anything else raises for ``call``."""
    if response.code == 200:
        return []
    if response.code == 409:
        try:
            errors = (json.loads(response.body or "null") or {}).get("Errors")
        except ValueError:
            errors = None
        return errors or [{"OpIndex": None, "What": "transaction rolled back"}]
    if response.code == 403:
        raise consul.ACLPermissionDenied(response.body)
    raise consul.ConsulException("%d %s" % (response.code, response.body))


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


class StateStore:
    """Read and update service documents with check-and-set.

    ``fence`` (optional) gives the ServiceLocks the writer holds at the moment of a write; every
    update then also checks, in the same Consul transaction, that their sessions still hold their
    keys, so a run that lost its lock can never write.
    """

    def __init__(self, client, fence: Callable[[], list] | None = None):
        self.client = client
        self.fence = fence

    def read(self, service):
        """Return (document, modify_index); a service never deployed gives an empty document and 0."""
        _index, entry = self.client.call("reading state of %s" % service, self.client.api.kv.get, state_key(service))
        if entry is None:
            return empty_state(service), 0
        return _state_document(service, entry), entry["ModifyIndex"]

    def update(self, service, mutate):
        """Apply ``mutate(document)`` (which edits a copy in place) and write it with CAS.

        Returns the (before, after) documents. A CAS conflict re-reads and
        re-applies, so ``mutate`` must be a function of the document alone.
        """
        for _attempt in range(CAS_ATTEMPTS):
            before, index = self.read(service)
            after = copy.deepcopy(before)
            mutate(after)
            if after == before:
                return before, after
            after["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            text = json.dumps(after, sort_keys=True)
            locks = self.fence() if self.fence else []
            if locks:
                written = self._write_fenced(service, text, index, locks)
            else:
                written = self.client.call("writing state of %s" % service, self.client.api.kv.put, state_key(service),
                                           text, cas=index)
            if written:
                return before, after
        raise FlowError("State of %s kept changing under us (%d CAS conflicts); try again." % (service, CAS_ATTEMPTS))

    def _write_fenced(self, service: str, text: str, index: int, locks: list) -> bool:
        """One transaction: each lock's session still holds its key, and the CAS write. False on a CAS conflict;
        LockLost when a session check failed (then nothing was written)."""
        operations = [{"KV": {"Verb": "check-session", "Key": lock_key(lock.service), "Session": lock.session}}
                      for lock in locks]
        operations.append({"KV": {"Verb": "cas", "Key": state_key(service), "Index": index,
                                  "Value": base64.b64encode(text.encode()).decode("ascii")}})
        errors = self.client.transaction("writing state of %s" % service, operations)
        for error in errors:
            position = error.get("OpIndex")
            if isinstance(position, int) and position < len(locks):
                raise locks[position].lost("writing the state of %s" % service)
        if any(error.get("OpIndex") == len(locks) for error in errors):
            return False
        if errors:
            raise FlowError("Consul refused to write the state of %s: %s." % (service, errors[0].get("What")))
        return True

    def read_all(self):
        """Every service document: {service: document}, for rendering the whole proxy."""
        _index, entries = self.client.call(
            "reading the state of all services", self.client.api.kv.get, "%s/services/" % KV_PREFIX, recurse=True
        )
        documents = {}
        for entry in entries or []:
            service = entry["Key"].rsplit("/", 1)[-1]
            documents[service] = _state_document(service, entry)
        return documents


def _state_document(service, entry):
    """A KV entry as a complete state document (fields a document lacks get their empty value)."""
    try:
        document = json.loads(entry["Value"] or b"{}")
    except ValueError:
        raise FlowError("State of %s in Consul (%s) is not JSON; fix or delete that key." % (service, entry["Key"]))
    merged = empty_state(service)
    merged.update(document)
    return merged


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

    def __init__(self, client, service, timeout=300, ttl=30, lock_delay=5, operation="flow", on_wait=None,
                 on_abandoned=None):
        self.client = client
        self.service = service
        self.timeout = timeout
        self.ttl = ttl
        self.lock_delay = lock_delay
        self.operation = operation
        self.on_wait = on_wait
        self.on_abandoned = on_abandoned
        self.session = None
        self.held = False
        self.waited = 0.0
        self.confirmed_at = None  # wall time the session was last known to hold the lock
        self.lost_reason = None  # set by the renewal when Consul no longer knows the session
        self._stop = threading.Event()
        self._renewer = None

    def holder_record(self):
        return {
            "holder": who_am_i(),
            "pid": os.getpid(),
            "operation": self.operation,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _read(self, **blocking):
        """(index, entry) of the lock key; ``index`` and ``wait`` make it a blocking query."""
        return self.client.call("reading the lock of %s" % self.service, self.client.api.kv.get, lock_key(self.service),
                                **blocking)

    def describe_holder(self, entry=None):
        """Who holds the lock (from ``entry``, else read now); None when no session holds it."""
        if entry is None:
            _index, entry = self._read()
        if not entry or not entry.get("Session"):
            return None
        return _describe_holder(entry)

    def __enter__(self):
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

    def _renew(self):
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

    def lost(self, doing: str, entry=None) -> LockLost:
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

    def _release(self):
        self._stop.set()
        self.held = False
        if self.session is None:
            return
        try:
            self.client.api.kv.put(lock_key(self.service), None, release=self.session)
        except Exception:  # best effort: destroying the session releases the lock too
            pass
        try:
            self.client.api.session.destroy(self.session)
        except Exception:  # the TTL expires it otherwise
            pass
        self.session = None

    def __exit__(self, exc_type, exc, tb):
        self._release()
        return False


def _describe_holder(entry):
    """``user@host (operation, pid N, since T[, session S])`` from a lock entry's holder record."""
    try:
        record = json.loads(entry.get("Value") or b"{}")
    except ValueError:
        record = {}
    session = (", session %s" % entry["Session"]) if entry.get("Session") else ""
    return "%s (%s, pid %s, since %s%s)" % (
        record.get("holder", "unknown"), record.get("operation", "?"), record.get("pid", "?"), record.get("since", "?"), session,
    )


def _utc(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _lock_delay_holder(entry):
    if entry and entry.get("Value"):
        return "%s, which ended without releasing it (Consul's lock-delay has not passed yet)" % _describe_holder(entry)
    return "a session whose lock-delay has not passed yet"


def record_release(document, release):
    """Append ``release`` to the history, newest last, keeping the last RELEASE_HISTORY_LIMIT."""
    document["releases"] = (document.get("releases") or []) + [release]
    document["releases"] = document["releases"][-RELEASE_HISTORY_LIMIT:]
