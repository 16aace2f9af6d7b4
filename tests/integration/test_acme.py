# -*- coding: utf-8 -*-
"""Role acme against a real ACME server: pebble (tests/images/pebble), the one Let's Encrypt publishes for tests.

Two proxy nodes (two proxy containers on their own loopback ports) are the play's hosts. The role runs with the
first as the issuer, while pebble validates through the second's HTTP port: the challenges are answered by a node
that did not order them, from Consul. pebble's names resolve to 127.0.0.1 (``--add-host``); its issued chain is
checked against the root its management port serves (``/roots/0``).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from conftest import ANSIBLE_PLAYBOOK, CONSUL_URL, PROXY_IMAGE, TestProxy, consul_delete, consul_get, consul_put, free_ports

PEBBLE_IMAGE = "dockerflow-test/pebble:2.4"
CHALLENGES = "/v1/kv/dockerflow/proxy/acme-challenges/"
DOMAINS = ["shop.acme.test", "www.shop.acme.test"]
# The tests that take the issuer's lock or write challenges share those keys of the harness Consul: they run one
# after the other on one worker (make integration: pytest -n 2 --dist loadgroup), so that no test sees another's.
SHARED_ACME_KEYS = pytest.mark.xdist_group("acme-keys-of-the-harness-consul")


class Pebble:
    """pebble on the host network, validating HTTP-01 on ``http_port`` of 127.0.0.1 for ``names``."""

    def __init__(self, docker_client, tmp_path, http_port, names):
        self.directory_port, self.management_port = free_ports(2)
        self.container = docker_client.containers.run(
            PEBBLE_IMAGE, detach=True, network_mode="host", name="dockerflow-test-pebble-%s" % uuid.uuid4().hex[:8],
            environment={"PEBBLE_LISTEN": "127.0.0.1:%d" % self.directory_port,
                         "PEBBLE_MANAGEMENT": "127.0.0.1:%d" % self.management_port,
                         "PEBBLE_HTTP_PORT": str(http_port)},
            extra_hosts=dict.fromkeys(names, "127.0.0.1"))
        self.tls_ca = tmp_path / "pebble-minica.pem"  # the CA of pebble's own HTTPS certificate
        self.directory = "https://127.0.0.1:%d/dir" % self.directory_port
        deadline = time.monotonic() + 30
        while True:
            try:
                # Read in the loop: an exec right after the start once gave no certificate (a CI run of d08a1fe).
                code, ca = self.container.exec_run(["cat", "/etc/pebble/minica.pem"])
                if code != 0:
                    raise OSError("cat /etc/pebble/minica.pem: exit %d: %s" % (code, ca.decode(errors="replace")))
                self.tls_ca.write_bytes(ca)
                self.get(self.directory)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("pebble did not start:\n%s" % self.container.logs().decode())
                time.sleep(0.2)

    def get(self, url):
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.read()

    def root(self):
        """The root that signs what pebble issues (made at its start)."""
        return x509.load_pem_x509_certificate(self.get("https://127.0.0.1:%d/roots/0" % self.management_port))

    def status(self, certificate):
        """pebble's word on ``certificate`` (management ``/cert-status-by-serial/<hex>``): "Valid" or "Revoked"."""
        url = "https://127.0.0.1:%d/cert-status-by-serial/%x" % (self.management_port, certificate.serial_number)
        return json.loads(self.get(url))["Status"]

    def remove(self):
        self.container.remove(force=True)


def proxy_node(docker_client):
    node = TestProxy(docker_client)
    node.https_port = free_ports(1)[0]
    return node


def node_vars(node):
    options = node.options
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "proxy_name": node.name, "proxy_image": PROXY_IMAGE, "proxy_listen_address": "127.0.0.1",
            "proxy_http_port": options["proxy_http_port"], "proxy_https_port": node.https_port,
            "proxy_stats_port": options["proxy_stats_port"], "proxy_admin_port": options["proxy_admin_port"],
            "proxy_master_port": options["proxy_master_port"], "proxy_consul_dns": options["consul_dns"],
            "proxy_consul_address": CONSUL_URL, "proxy_acme_consul": CONSUL_URL.split("//", 1)[1]}


@pytest.fixture
def nodes(docker_client, consul_agent):
    made = [proxy_node(docker_client), proxy_node(docker_client)]
    yield made
    for node in made:
        node.cleanup()
        consul_delete("/v1/kv/dockerflow/proxy/certificates/%s?recurse=true" % node.name)


@pytest.fixture
def account_key():
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "letsencrypt.yml")


def play(tmp_path, nodes, role="dockerflow.flow.acme", verbosity=(), example=False, **role_vars):
    """Run ``role`` on the nodes, the `proxy` group (the first issues), or with ``example``
    examples/letsencrypt.yml with ``role_vars`` as extra variables; the completed process."""
    hosts = {"node_%d" % index: node_vars(node) for index, node in enumerate(nodes)}
    inventory = {"all": {"children": {"proxy": {"hosts": hosts}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    book = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:6])
    extra = []
    if example:
        book.write_text(json.dumps(role_vars))
        extra, book = ["-e", "@%s" % book], EXAMPLE
    else:
        book.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False,
                                         "roles": [{"role": role, "vars": role_vars}]}]))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run([ANSIBLE_PLAYBOOK, *verbosity, "-i", str(tmp_path / "inventory.yml"), *extra, str(book)],
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def acme_vars(pebble, account_key, **more):
    return dict({"acme_directory": pebble.directory, "acme_account_key": account_key, "acme_email": "ops@acme.test",
                 "acme_terms_agreed": True, "acme_domains": DOMAINS, "acme_ca_path": str(pebble.tls_ca)}, **more)


def recap(completed):
    """{host: (changed, failed)} of the play recap."""
    counts = {}
    for line in completed.stdout.split("PLAY RECAP", 1)[-1].splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == ":":
            fields = dict(word.split("=", 1) for word in words[2:] if "=" in word)
            counts[words[0]] = (int(fields["changed"]), int(fields["failed"]))
    return counts


def served(node, root, domain):
    """The certificate ``node`` serves over HTTPS for SNI ``domain``, verified against ``root`` and ``domain``."""
    context = ssl.create_default_context(cadata=root.public_bytes(serialization.Encoding.PEM).decode())
    with (socket.create_connection(("127.0.0.1", node.https_port), timeout=5) as raw,
          context.wrap_socket(raw, server_hostname=domain) as tls):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


CERTIFICATE_NAME = DOMAINS[0].replace(".", "-")  # the role's default acme_certificate_name


def recorded(node):
    return json.loads(urllib.request.urlopen("%s/v1/kv/dockerflow/proxy/certificates/%s/%s?raw"
                                             % (CONSUL_URL, node.name, CERTIFICATE_NAME), timeout=5).read())


def verify_chain(pem_chain, root, domain):
    """The recorded chain verifies against pebble's root for ``domain``; its leaf."""
    leaf, *intermediates = x509.load_pem_x509_certificates(pem_chain.encode())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(domain))
    verifier.verify(leaf, intermediates)
    return leaf


def consul_read(path):
    """consul_get, None for a key that is not there."""
    try:
        return consul_get(path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def lock_holder():
    return ((consul_read("/v1/kv/dockerflow/locks/_acme") or [{}])[0]).get("Session")


def secret_part(pem):
    """20 characters of ``pem``'s base64 that encode only bits of the private scalar (the rest of an EC key's PEM
    is a constant header and the public key, which x509_certificate_info shows with the certificate)."""
    key = serialization.load_pem_private_key(pem.encode(), None)
    body = "".join(pem.strip().splitlines()[1:-1])
    der = base64.b64decode(body)
    start = der.find(key.private_numbers().private_value.to_bytes(32, "big"))
    assert start > 0
    first = -(-start * 8 // 6) + 1  # the first character whose six bits all come from the scalar
    return body[first:first + 20]


class ChallengeWatch(threading.Thread):
    """While the role runs: each token published in Consul, asked of both nodes as the ACME server would."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes, self.answers, self.stop = nodes, {}, threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            for entry in consul_read(CHALLENGES + "?recurse=true") or []:
                token = entry["Key"].rsplit("/", 1)[1]
                if token not in self.answers:
                    self.answers[token] = [node.get("/.well-known/acme-challenge/" + token) for node in self.nodes]


@pytest.mark.long_running
@SHARED_ACME_KEYS
def test_the_example_issues_on_two_nodes_then_no_renewal_then_renewal_then_a_replacement_revokes_the_old(
        docker_client, tmp_path, nodes, account_key):
    issuer, validator = nodes
    pebble = Pebble(docker_client, tmp_path, validator.http_port, DOMAINS)
    try:
        watch = ChallengeWatch(nodes)
        watch.start()
        started = time.monotonic()
        # The README's example (examples/letsencrypt.yml), pointed at pebble.
        issued = play(tmp_path, nodes, example=True, **acme_vars(pebble, account_key))
        watch.stop.set()
        watch.join()
        assert issued.returncode == 0, issued.stdout[-4000:] + issued.stderr[-2000:]
        issue_seconds = time.monotonic() - started
        # Both domains were validated through the node that did not order them; each token was answered with its
        # key authorization by both nodes (all the ACME server needs is one).
        assert len(watch.answers) == 2, watch.answers
        for token, answers in watch.answers.items():
            assert [status for status, _body in answers] == [200, 200], answers
            assert answers[0][1] == answers[1][1] and answers[0][1].startswith(token + "."), answers
        assert consul_read(CHALLENGES + "?recurse=true") is None, "the role removes its challenges"
        assert not lock_holder(), "the issuer's lock is released"

        root = pebble.root()
        leaf = verify_chain(recorded(issuer)["cert"], root, DOMAINS[1])
        assert recorded(validator)["cert"] == recorded(issuer)["cert"]
        for node in nodes:
            for domain in DOMAINS:
                assert served(node, root, domain).serial_number == leaf.serial_number, (node.name, domain)

        again = play(tmp_path, nodes, **acme_vars(pebble, account_key))
        assert again.returncode == 0, again.stdout[-4000:]
        assert recap(again) == {"node_0": (0, 0), "node_1": (0, 0)}, again.stdout[-3000:]
        assert "Place the order" not in again.stdout.split("PLAY RECAP")[0].replace("skipping", ""), "not due: no order"
        assert recorded(issuer)["cert"] == recorded(validator)["cert"]
        assert verify_chain(recorded(issuer)["cert"], root, DOMAINS[0]).serial_number == leaf.serial_number

        # pebble issues for 5 years: 4,000 days of margin makes it due.
        renewed = play(tmp_path, nodes, verbosity=("-vvv",), **acme_vars(pebble, account_key, acme_renew_days=4000))
        assert renewed.returncode == 0, renewed.stdout[-4000:]
        output = (renewed.stdout + renewed.stderr).replace("\\n", "").replace("\n", "")
        for key in (account_key, recorded(issuer)["key"]):  # neither private key shows, even with -vvv
            assert secret_part(key) not in output
        new_leaf = verify_chain(recorded(issuer)["cert"], root, DOMAINS[0])
        assert new_leaf.serial_number != leaf.serial_number
        for node in nodes:
            assert served(node, root, DOMAINS[0]).serial_number == new_leaf.serial_number, node.name
        assert pebble.status(new_leaf) == "Valid"

        # A compromised key: replaced although not due, served on both nodes, then the replaced one revoked.
        started = time.monotonic()
        revoked = play(tmp_path, nodes, **acme_vars(pebble, account_key, acme_revoke=True))
        assert revoked.returncode == 0, revoked.stdout[-4000:]
        revoke_seconds = time.monotonic() - started
        replacement = verify_chain(recorded(issuer)["cert"], root, DOMAINS[0])
        assert replacement.serial_number != new_leaf.serial_number
        for node in nodes:
            for domain in DOMAINS:
                assert served(node, root, domain).serial_number == replacement.serial_number, (node.name, domain)
        assert [pebble.status(new_leaf), pebble.status(replacement)] == ["Revoked", "Valid"]
        assert pebble.status(leaf) == "Valid", "only the replaced certificate is revoked"
        print("issue on two nodes: %.1fs, replace and revoke: %.1fs" % (issue_seconds, revoke_seconds))
    finally:
        pebble.remove()


@SHARED_ACME_KEYS
def test_an_unreachable_directory_fails_in_one_line_naming_it_and_leaves_the_proxy_untouched(
        tmp_path, nodes, account_key):
    node = nodes[0]
    made = play(tmp_path, [node], role="dockerflow.flow.proxy")
    assert made.returncode == 0, made.stdout[-3000:]
    before = node.config()
    directory = "https://127.0.0.1:%d/dir" % free_ports(1)[0]
    failed = play(tmp_path, [node], acme_directory=directory, acme_account_key=account_key, acme_terms_agreed=True,
                  acme_domains=DOMAINS)
    assert failed.returncode != 0
    messages = [line for line in failed.stdout.splitlines() if line.startswith("fatal:")]
    assert len(messages) == 1 and directory.rsplit("/", 1)[0] in messages[0], failed.stdout[-3000:]
    assert "Traceback" not in failed.stdout
    assert node.config() == before
    assert not lock_holder(), "the lock is released after a failed order"


@pytest.mark.parametrize("domain", ["shop_acme.test", "Shop_ACME.test", "*.acme.test", "127.0.0.1", "shop acme.test"])
def test_a_domain_that_is_not_a_host_name_fails_in_one_line(tmp_path, nodes, account_key, domain):
    failed = play(tmp_path, nodes[:1], acme_account_key=account_key, acme_terms_agreed=True, acme_domains=[domain],
                  acme_directory="https://127.0.0.1:9/dir")
    assert failed.returncode != 0
    messages = [line for line in failed.stdout.splitlines() if line.startswith("fatal:")]
    assert len(messages) == 1 and "acme_domains=" in messages[0] and domain in messages[0], \
        failed.stdout[-3000:] + failed.stderr[-3000:]
    with pytest.raises(docker.errors.NotFound):
        nodes[0].container()  # nothing was made


@SHARED_ACME_KEYS
def test_every_node_answers_a_challenge_from_consul_and_nothing_else(tmp_path, nodes):
    node = nodes[0]
    made = play(tmp_path, [node], role="dockerflow.flow.proxy")
    assert made.returncode == 0, made.stdout[-3000:]
    token = "tok-" + uuid.uuid4().hex
    consul_put(CHALLENGES + token, b"%s.thumbprint" % token.encode())
    try:
        assert node.get("/.well-known/acme-challenge/" + token) == (200, token + ".thumbprint")
        assert node.get("/.well-known/acme-challenge/" + token + "?recurse=true")[0] == 200
        assert node.get("/.well-known/acme-challenge/nope" + uuid.uuid4().hex)[0] == 404
        # Not base64url: answered without asking Consul, whatever is in it.
        for path in ("../../../locks/_acme", "..%2F..%2Fservices", "a.b", "%74ok"):
            status, _body = node.get("/.well-known/acme-challenge/" + path)
            assert status == 404, path
        assert node.get("/.well-known/other")[0] == 503, "other paths are routed (no route here: 503)"
    finally:
        consul_delete(CHALLENGES + token)
