# -*- coding: utf-8 -*-
"""Service state documents: release history, empty state, the CAS retry loop, and the fenced lock.

StateStore is driven here by a small in-memory fake of the ConsulClient (the
``call`` wrapper plus ``api.kv.get``/``api.kv.put``). That is deliberate: these
unit tests target the check-and-set retry logic, which needs conflicts on
demand. The fenced lock (a lost session noticed, a write of a run that lost its
lock refused) is tested against a real Consul agent, whose sessions and
transactions are what it relies on (section at the end).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from types import SimpleNamespace

import consul
import pytest
import requests

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import LockLost, ServiceLock, lock_key, who_am_i
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import (
    CAS_ATTEMPTS,
    RELEASE_HISTORY_LIMIT,
    StateStore,
    empty_state,
    record_release,
    state_key,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

# --- pure helpers ---------------------------------------------------------------------------


def test_keys():
    assert state_key("books-app") == "dockerflow/services/books-app"
    assert lock_key("books-app") == "dockerflow/locks/books-app"


def test_empty_state():
    assert empty_state("books-app") == {
        "schema": 1,
        "service": "books-app",
        "live_color": None,
        "deployed_color": None,
        "next_release": 1,
        "colors": {},
        "releases": [],
        "routes": {},
    }


def test_empty_states_do_not_share_containers():
    one, two = empty_state("a"), empty_state("a")
    one["releases"].append({"release": 1})
    one["colors"]["blue"] = {}
    assert two["releases"] == [] and two["colors"] == {}


def test_record_release_appends_newest_last():
    document = empty_state("s")
    record_release(document, {"release": 1})
    record_release(document, {"release": 2})
    assert document["releases"] == [{"release": 1}, {"release": 2}]


def test_record_release_on_a_document_without_history():
    document = {"releases": None}
    record_release(document, {"release": 1})
    assert document == {"releases": [{"release": 1}]}
    document = {}
    record_release(document, {"release": 1})
    assert document == {"releases": [{"release": 1}]}


@pytest.mark.parametrize("count", [1, RELEASE_HISTORY_LIMIT - 1, RELEASE_HISTORY_LIMIT, RELEASE_HISTORY_LIMIT + 1, 57])
def test_record_release_keeps_the_last_twenty(count):
    document = empty_state("s")
    for number in range(1, count + 1):
        record_release(document, {"release": number})
    kept = [entry["release"] for entry in document["releases"]]
    assert RELEASE_HISTORY_LIMIT == 20
    assert kept == list(range(max(1, count - 19), count + 1))


def test_who_am_i():
    assert "@" in who_am_i()


# --- StateStore with a fake client -----------------------------------------------------------


class FakeKV:
    """An in-memory KV with Consul's ModifyIndex and check-and-set semantics.

    ``interfere`` is called before each put and may write the key itself,
    simulating a concurrent writer between our read and our write.
    """

    def __init__(self):
        self.data = {}  # key -> (value bytes, modify index)
        self.index = 10
        self.puts = []
        self.interfere = None

    def get(self, key, **kwargs):
        if key not in self.data:
            return self.index, None
        value, modify_index = self.data[key]
        return self.index, {"Key": key, "Value": value, "ModifyIndex": modify_index}

    def write(self, key, value):
        self.index += 1
        self.data[key] = (value.encode() if isinstance(value, str) else value, self.index)

    def put(self, key, value, cas=None, **kwargs):
        if self.interfere:
            self.interfere(self)
        self.puts.append((key, value, cas))
        current = self.data.get(key, (None, 0))[1]
        if cas is not None and cas != current:
            return False
        self.write(key, value)
        return True


class FakeClient:
    """Mimics ConsulClient: ``call(what, fn, *args, **kwargs)`` and ``api.kv``."""

    def __init__(self):
        self.kv = FakeKV()
        self.api = type("Api", (), {})()
        self.api.kv = self.kv
        self.whats = []

    def call(self, what, function, *args, **kwargs):
        self.whats.append(what)
        return function(*args, **kwargs)


def stored(client, service="books-app"):
    return json.loads(client.kv.data[state_key(service)][0])


def test_read_of_a_service_never_deployed():
    assert StateStore(FakeClient()).read("books-app") == (empty_state("books-app"), 0)


def test_read_merges_defaults_and_returns_the_index():
    client = FakeClient()
    client.kv.write(state_key("books-app"), json.dumps({"service": "books-app", "live_color": "blue", "extra": 1}))
    document, index = StateStore(client).read("books-app")
    assert index == client.kv.index
    assert document == dict(empty_state("books-app"), live_color="blue", extra=1)


def test_read_of_an_empty_value():
    client = FakeClient()
    client.kv.data[state_key("s")] = (None, 4)
    assert StateStore(client).read("s") == (empty_state("s"), 4)


def test_read_of_a_value_that_is_not_json():
    client = FakeClient()
    client.kv.write(state_key("s"), "not json")
    with pytest.raises(FlowError) as info:
        StateStore(client).read("s")
    assert str(info.value) == "State of s in Consul (dockerflow/services/s) is not JSON; fix or delete that key."


def test_update_writes_with_cas_of_the_read_index():
    client = FakeClient()
    before, after = StateStore(client).update("books-app", lambda doc: doc.update(live_color="blue"))
    assert before == empty_state("books-app")
    assert after["live_color"] == "blue"
    assert "updated" in after
    assert stored(client) == after
    assert [cas for _key, _value, cas in client.kv.puts] == [0]  # 0: create only if absent
    assert "writing state of books-app" in client.whats


def test_update_without_change_does_not_write():
    client = FakeClient()
    client.kv.write(state_key("books-app"), json.dumps({"live_color": "blue"}))
    before, after = StateStore(client).update("books-app", lambda doc: doc.update(live_color="blue"))
    assert before == after
    assert client.kv.puts == []


def test_mutate_edits_a_copy():
    client = FakeClient()
    client.kv.write(state_key("s"), json.dumps({"colors": {"blue": {"release": 1}}}))

    def mutate(doc):
        doc["colors"]["blue"]["release"] = 2

    before, after = StateStore(client).update("s", mutate)
    assert before["colors"]["blue"]["release"] == 1
    assert after["colors"]["blue"]["release"] == 2


def test_conflict_is_retried_on_fresh_data():
    client = FakeClient()
    client.kv.write(state_key("books-app"), json.dumps({"next_release": 1, "routes": {}}))
    attempts = []

    def concurrent_proxy_write(kv):
        # Between our first read and our first put, a proxy records a route.
        if len(kv.puts) == 0:
            kv.write(state_key("books-app"), json.dumps({"next_release": 1, "routes": {"/api": "blue"}}))

    client.kv.interfere = concurrent_proxy_write

    def mutate(doc):
        attempts.append(copy_of(doc))
        doc["next_release"] += 1

    before, after = StateStore(client).update("books-app", mutate)
    assert len(client.kv.puts) == 2
    first_cas, second_cas = [cas for _key, _value, cas in client.kv.puts]
    assert second_cas > first_cas
    # The second attempt saw the proxy's write and kept it.
    assert attempts[0]["routes"] == {} and attempts[1]["routes"] == {"/api": "blue"}
    assert before["routes"] == {"/api": "blue"}
    assert after["routes"] == {"/api": "blue"} and after["next_release"] == 2
    assert stored(client)["routes"] == {"/api": "blue"}
    assert stored(client)["next_release"] == 2


def copy_of(doc):
    return json.loads(json.dumps(doc))


class ScriptedPutClient(FakeClient):
    """A client whose puts answer from a script of booleans (True: written, False: CAS conflict)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        real_put = self.kv.put

        def put(key, value, cas=None, **kwargs):
            answer = self.answers.pop(0)
            if answer:
                return real_put(key, value, cas=cas, **kwargs)
            self.kv.puts.append((key, value, cas))
            self.kv.write(key, json.dumps({"next_release": 100 + len(self.kv.puts)}))  # someone else won
            return False

        self.kv.put = put


def test_false_then_true_applies_the_mutation_to_the_fresh_document():
    client = ScriptedPutClient([False, True])
    seen = []

    def mutate(doc):
        seen.append(doc["next_release"])
        doc["next_release"] += 1

    before, after = StateStore(client).update("books-app", mutate)
    assert seen == [1, 101]
    assert before["next_release"] == 101 and after["next_release"] == 102
    assert stored(client)["next_release"] == 102


def test_ten_conflicts_give_up():
    client = ScriptedPutClient([False] * CAS_ATTEMPTS + [True])
    calls = []
    with pytest.raises(FlowError) as info:
        StateStore(client).update("books-app", lambda doc: calls.append(1) or doc.update(live_color="green"))
    assert CAS_ATTEMPTS == 10
    assert str(info.value) == "State of books-app kept changing under us (10 CAS conflicts); try again."
    assert len(calls) == CAS_ATTEMPTS
    assert len(client.kv.puts) == CAS_ATTEMPTS


def test_nine_conflicts_still_succeed():
    client = ScriptedPutClient([False] * (CAS_ATTEMPTS - 1) + [True])
    _before, after = StateStore(client).update("books-app", lambda doc: doc.update(live_color="green"))
    assert stored(client)["live_color"] == after["live_color"] == "green"


# --- ConsulClient: address checks and error translation (no agent contacted) ----------------


@pytest.mark.parametrize("address", ["http://127.0.0.1:8500", "127.0.0.1:8500", "https://consul.example.com", "localhost"])
def test_consul_client_accepts_addresses(address):
    client = ConsulClient(address)
    assert client.address == address


def test_consul_client_default_ports():
    assert ConsulClient("https://consul.example.com").api.http.base_uri == "https://consul.example.com:443"
    assert ConsulClient("consul.example.com").api.http.base_uri == "http://consul.example.com:8500"


@pytest.mark.parametrize(
    "address, message",
    [
        ("ftp://consul:8500", r"^consul_address='ftp://consul:8500' is not valid: expected http\(s\)://HOST:PORT\.$"),
        ("http://", r"^consul_address='http://' is not valid"),
        ("[]", r"^consul_address='\[\]' is not valid: expected http\(s\)://HOST:PORT\.$"),
        ("http://[consul]:8500", r"^consul_address='http://\[consul\]:8500' is not valid"),
        ("http://consul:99999", r"^consul_address='http://consul:99999' has an invalid port\.$"),
    ],
)
def test_consul_client_rejects_addresses(address, message):
    with pytest.raises(FlowError, match=message):
        ConsulClient(address)


def test_client_cert_needs_a_key():
    with pytest.raises(FlowError, match=r"^consul_client_cert is set but consul_client_key is not"):
        ConsulClient("http://127.0.0.1:8500", client_cert="/c.pem")


def _raiser(exc):
    def function(*args, **kwargs):
        raise exc

    return function


@pytest.mark.parametrize(
    "exc, message",
    [
        (
            consul.ACLPermissionDenied("Permission denied"),
            "Consul at http://c:8500 denied reading x (permission denied): the ACL token (consul_token) lacks the permission.",
        ),
        (
            consul.ACLPermissionDenied("ACL not found"),
            "Consul at http://c:8500 rejected the ACL token (consul_token) while reading x: ACL not found, no such token.",
        ),
        (requests.exceptions.SSLError("bad cert\nmore"), "TLS to Consul at http://c:8500 failed while reading x: bad cert."),
        (
            requests.exceptions.ConnectionError("refused"),
            "Cannot reach Consul at http://c:8500 (consul_address) while reading x.",
        ),
        (requests.exceptions.Timeout("slow"), "Consul at http://c:8500 timed out while reading x."),
        (consul.ConsulException("500 oops\ntrace"), "Consul at http://c:8500 failed while reading x: 500 oops."),
        (consul.ConsulException(""), "Consul at http://c:8500 failed while reading x: ConsulException."),
    ],
)
def test_call_translates_errors(exc, message):
    client = ConsulClient("http://c:8500")
    with pytest.raises(FlowError) as info:
        client.call("reading x", _raiser(exc))
    assert str(info.value) == message


def test_call_passes_results_and_arguments():
    client = ConsulClient("http://c:8500")
    assert client.call("adding", lambda a, b=0: a + b, 1, b=2) == 3


def test_call_lets_bugs_through():
    client = ConsulClient("http://c:8500")
    with pytest.raises(KeyError):
        client.call("reading x", _raiser(KeyError("k")))


def test_ping_without_leader():
    client = ConsulClient("http://c:8500")
    client.api.status.leader = lambda: ""
    with pytest.raises(FlowError, match=r"^Consul at http://c:8500 has no cluster leader"):
        client.ping()
    client.api.status.leader = lambda: "10.0.0.1:8300"
    assert client.ping() == "10.0.0.1:8300"


@pytest.mark.parametrize("token", ["Ā", "secret\nX-Injected: 1", "two words", "\x00", "tab\there"])
def test_a_token_that_cannot_be_a_header_is_refused_without_repeating_it(token):
    with pytest.raises(FlowError) as info:
        ConsulClient("http://127.0.0.1:8500", token=token)
    assert str(info.value) == "consul_token is not valid: a Consul token is printable ASCII without spaces (its SecretID)."


@pytest.mark.parametrize("parameter", ["ca_cert", "client_cert", "client_key"])
def test_tls_files_that_do_not_exist_are_named(tmp_path, parameter):
    files = {"client_cert": str(tmp_path / "c.pem"), "client_key": str(tmp_path / "k.pem")}
    for path in files.values():
        open(path, "w").close()
    files[parameter] = str(tmp_path / "missing")
    with pytest.raises(FlowError) as info:
        ConsulClient("https://127.0.0.1:8501", **files)
    assert str(info.value) == "consul_%s %s is not a file." % (parameter, tmp_path / "missing")


# --- the transaction request (no agent contacted) -----------------------------------------------


def test_a_transaction_carries_the_acl_token_and_reads_consuls_answer():
    """py-consul's Txn.put sends no token: with ACLs a fenced write would be denied."""
    client = ConsulClient("http://c:8500", token="s3cret")
    sent = {}

    def put(callback, path, params=None, data="", headers=None):
        sent.update(path=path, data=json.loads(data), headers=headers)
        return callback(SimpleNamespace(code=409, headers={}, body=json.dumps({"Errors": [{"OpIndex": 1, "What": "stale"}]})))

    client.api.http.put = put
    assert client.transaction("writing x", [{"KV": {"Verb": "get", "Key": "k"}}]) == [{"OpIndex": 1, "What": "stale"}]
    assert sent == {"path": "/v1/txn", "data": [{"KV": {"Verb": "get", "Key": "k"}}], "headers": {"X-Consul-Token": "s3cret"}}
    client.api.http.put = lambda callback, *args, **kwargs: callback(SimpleNamespace(code=200, headers={}, body="{}"))
    assert client.transaction("writing x", []) == []
    client.api.http.put = lambda callback, *args, **kwargs: callback(
        SimpleNamespace(code=403, headers={}, body="Permission denied"))
    with pytest.raises(FlowError, match=r"^Consul at http://c:8500 denied writing x \(permission denied\)"):
        client.transaction("writing x", [])


# --- the fenced lock, against a real Consul ---------------------------------------------------------
# Sessions, their invalidation and /v1/txn's check-session are Consul's semantics, so these use an agent:
# the harness's (`make consul`, DOCKERFLOW_TEST_CONSUL, http://127.0.0.1:8500 by default), as the
# integration tests do. Without one they are skipped, saying so.

CONSUL_URL = os.environ.get("DOCKERFLOW_TEST_CONSUL", "http://127.0.0.1:8500")


@pytest.fixture
def agent():
    """A client of the real agent and a service name of this test's own; its keys and sessions go afterwards."""
    client = ConsulClient(CONSUL_URL, timeout=5)
    try:
        client.ping()
    except FlowError as error:
        pytest.skip("needs a Consul agent (`make consul`): %s" % error)
    service = "dftest-lock-%s" % uuid.uuid4().hex[:8]
    sessions = []
    yield SimpleNamespace(client=client, service=service, sessions=sessions)
    for session in sessions:
        client.api.session.destroy(session)
    for key in (state_key(service), lock_key(service), lock_key("proxy-" + service)):
        client.api.kv.delete(key)


def take(agent, name=None, operation="deploy"):
    """A held ServiceLock (no lock-delay, so another run can take it at once once it is lost)."""
    lock = ServiceLock(agent.client, name or agent.service, ttl=10, lock_delay=0, operation=operation).__enter__()
    agent.sessions.append(lock.session)
    return lock


def test_a_fenced_write_lands_while_the_lock_is_held(agent):
    lock = take(agent)
    store = StateStore(agent.client, fence=lambda: [lock])
    store.update(agent.service, lambda doc: doc.update(live_color="blue"))
    assert store.read(agent.service)[0]["live_color"] == "blue"
    lock.confirm("changing something")  # still ours: no error
    lock.__exit__(None, None, None)
    assert not lock.held


def test_a_run_whose_session_was_destroyed_writes_nothing_and_names_who_holds_the_lock_now(agent):
    lock = take(agent)
    store = StateStore(agent.client, fence=lambda: [lock])
    store.update(agent.service, lambda doc: doc.update(deployed_color="blue"))
    document, index = store.read(agent.service)
    agent.client.api.session.destroy(lock.session)  # what `PUT /v1/session/destroy/<id>` does
    other = take(agent)
    with pytest.raises(LockLost) as info:
        store.update(agent.service, lambda doc: doc.update(deployed_color="green"))
    message = str(info.value)
    assert message.startswith(
        "Lost the lock of %s (Consul key dockerflow/locks/%s, session %s) before writing the state of %s: "
        "another session holds the key now. It was last confirmed at "
        % (agent.service, agent.service, lock.session, agent.service)), message
    assert message.endswith(
        "Another run may hold it now: %s (deploy, pid %d, since %s, session %s); this run stopped."
        % (who_am_i(), os.getpid(), json.loads(agent.client.api.kv.get(lock_key(agent.service))[1]["Value"])["since"],
           other.session)), message
    assert "\n" not in message
    assert store.read(agent.service) == (document, index), "nothing of the run that lost its lock landed"
    # The holder now writes as usual; the run that lost its lock releases nothing of the other's.
    StateStore(agent.client, fence=lambda: [other]).update(agent.service, lambda doc: doc.update(deployed_color="green"))
    lock.__exit__(None, None, None)
    assert agent.client.api.kv.get(lock_key(agent.service))[1]["Session"] == other.session
    other.__exit__(None, None, None)


def test_confirm_notices_a_lost_lock_before_anyone_took_it(agent):
    lock = take(agent)
    lock.confirm("starting instances")
    agent.client.api.session.destroy(lock.session)
    with pytest.raises(LockLost, match=r"^Lost the lock of %s \(Consul key dockerflow/locks/%s, session %s\) before "
                                       r"removing x: no session holds the key now\. It was last confirmed at "
                                       r"\S+Z, \d+s before\. Another run may hold it now; this run stopped\.$"
                       % (agent.service, agent.service, lock.session)):
        lock.confirm("removing x")
    lock.__exit__(None, None, None)


def test_the_renewal_notices_a_session_consul_no_longer_knows(agent):
    lock = take(agent)
    agent.client.api.session.destroy(lock.session)
    deadline = time.monotonic() + lock.ttl  # renewed every ttl/3
    while lock.lost_reason is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lock.lost_reason and lock.lost_reason.startswith("Consul no longer knows its session %s (renewal refused at "
                                                            % lock.session)
    reads = []
    agent.client.api.kv.get = lambda *args, **kwargs: reads.append(args) or (0, None)
    with pytest.raises(LockLost, match=r"before stopping y: Consul no longer knows its session"):
        lock.confirm("stopping y")
    assert len(reads) == 1, "no read to decide, one for naming the holder"
    lock.__exit__(None, None, None)


def test_a_fenced_write_retries_a_cas_conflict_and_keeps_the_other_write(agent):
    lock = take(agent)
    store = StateStore(agent.client, fence=lambda: [lock])
    store.update(agent.service, lambda doc: doc.update(next_release=1))
    transaction = agent.client.transaction
    conflicts = []

    def proxy_writes_first(what, operations):
        if not conflicts:  # between our read and our write, a proxy records a route
            conflicts.append(1)
            StateStore(agent.client).update(agent.service, lambda doc: doc.update(routes={"paths": ["/a"]}))
        return transaction(what, operations)

    agent.client.transaction = proxy_writes_first
    _before, after = store.update(agent.service, lambda doc: doc.update(next_release=doc["next_release"] + 1))
    assert conflicts and after["next_release"] == 2 and after["routes"] == {"paths": ["/a"]}
    assert store.read(agent.service)[0] == after


def test_a_write_checks_every_lock_the_run_holds(agent):
    """The proxy holds its own lock beside the service's: losing either stops its write."""
    service_lock, proxy_lock = take(agent), take(agent, name="proxy-" + agent.service, operation="proxy")
    store = StateStore(agent.client, fence=lambda: [service_lock, proxy_lock])
    store.update(agent.service, lambda doc: doc.update(live_color="blue"))
    agent.client.api.session.destroy(proxy_lock.session)
    with pytest.raises(LockLost, match=r"^Lost the lock of proxy-%s .* before writing the state of %s: no session holds"
                       % (agent.service, agent.service)):
        store.update(agent.service, lambda doc: doc.update(live_color="green"))
    assert store.read(agent.service)[0]["live_color"] == "blue"
    for lock in (service_lock, proxy_lock):
        lock.__exit__(None, None, None)
