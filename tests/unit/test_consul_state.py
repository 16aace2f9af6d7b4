# -*- coding: utf-8 -*-
"""Service state documents: release history, empty state, and the CAS retry loop.

StateStore is driven here by a small in-memory fake of the ConsulClient (the
``call`` wrapper plus ``api.kv.get``/``api.kv.put``). That is deliberate: these
unit tests target the check-and-set retry logic, which needs conflicts on
demand. A real Consul agent is used in tests/integration.
"""

from __future__ import annotations

import json

import consul
import pytest
import requests

from ansible_collections.dockerflow.flow.plugins.module_utils import consul_state
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import (
    CAS_ATTEMPTS,
    RELEASE_HISTORY_LIMIT,
    ConsulClient,
    StateStore,
    empty_state,
    lock_key,
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
    assert "@" in consul_state.who_am_i()


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


def test_delete():
    client = FakeClient()
    deleted = []
    client.api.kv.delete = lambda key: deleted.append(key) or True
    assert StateStore(client).delete("s") is True
    assert deleted == ["dockerflow/services/s"]


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
