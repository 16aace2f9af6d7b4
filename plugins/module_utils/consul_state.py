# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service state in Consul KV: one JSON document a service, written with check-and-set.

The document lives at ``dockerflow/services/<service>``. Writes never overwrite blindly: each one
names the ModifyIndex it read, and a conflicting write is retried on fresh data, so a concurrent
writer (a proxy recording routes, say) is never lost. The lock of a service (``dockerflow/locks/
<service>``) is in consul_lock, the connection in consul_client.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import KV_PREFIX, ConsulClient
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import ServiceLock, lock_key
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

STATE_SCHEMA = 1
RELEASE_HISTORY_LIMIT = 20
CAS_ATTEMPTS = 10


def state_key(service: str) -> str:
    return "%s/services/%s" % (KV_PREFIX, service)


def empty_state(service: str) -> dict:
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


class StateStore:
    """Read and update service documents with check-and-set.

    ``fence`` (optional) gives the ServiceLocks the writer holds at the moment of a write; every
    update then also checks, in the same Consul transaction, that their sessions still hold their
    keys, so a run that lost its lock can never write.
    """

    def __init__(self, client: ConsulClient, fence: Callable[[], list[ServiceLock]] | None = None) -> None:
        self.client = client
        self.fence = fence

    def read(self, service: str) -> tuple[dict, int]:
        """Return (document, modify_index); a service never deployed gives an empty document and 0."""
        _index, entry = self.client.call("reading state of %s" % service, self.client.api.kv.get, state_key(service))
        if entry is None:
            return empty_state(service), 0
        return _state_document(service, entry), entry["ModifyIndex"]

    def update(self, service: str, mutate: Callable[[dict], object]) -> tuple[dict, dict]:
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

    def _write_fenced(self, service: str, text: str, index: int, locks: list[ServiceLock]) -> bool:
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

    def read_all(self) -> dict[str, dict]:
        """Every service document: {service: document}, for rendering the whole proxy."""
        _index, entries = self.client.call(
            "reading the state of all services", self.client.api.kv.get, "%s/services/" % KV_PREFIX, recurse=True
        )
        documents = {}
        for entry in entries or []:
            service = entry["Key"].rsplit("/", 1)[-1]
            documents[service] = _state_document(service, entry)
        return documents


def _state_document(service: str, entry: dict) -> dict:
    """A KV entry as a complete state document (fields a document lacks get their empty value)."""
    try:
        document = json.loads(entry["Value"] or b"{}")
    except ValueError:
        raise FlowError("State of %s in Consul (%s) is not JSON; fix or delete that key." % (service, entry["Key"]))
    merged = empty_state(service)
    merged.update(document)
    return merged


def record_release(document: dict, release: dict) -> None:
    """Append ``release`` to the history, newest last, keeping the last RELEASE_HISTORY_LIMIT."""
    document["releases"] = (document.get("releases") or []) + [release]
    document["releases"] = document["releases"][-RELEASE_HISTORY_LIMIT:]
