# -*- coding: utf-8 -*-
"""HTTPS at the proxy, for real: certificates given to flow_proxy (PEM or files) are recorded in Consul and served
by a real HAProxy with SNI (one a domain plus the default one), TLS 1.2+, HTTP/2 by ALPN, the redirect (not for the
ACME path) and HSTS; key files are 0600 and no key reaches a result or ``-vvv``; a bad certificate fails in one line
and the proxy keeps serving the old one; a new certificate is served after a rotation under HTTPS load with no
failed request. Certificates come from an in-memory test CA (tests/support/pem.py) that the clients trust."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import FlowProject, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from https_load import HttpsLoad, certificate_id  # noqa: E402  (the benchmarks' HTTPS load)

SHOP, OTHER, FALLBACK = "shop.example.com", "other.example.com", "fallback.example.com"


def _context(ca, **versions):
    context = ssl.create_default_context(cadata=ca.cert)
    for name, version in versions.items():
        setattr(context, name, version)
    return context


def https_get(proxy, ca, host, path="/", context=None):
    """(status, headers, body, the served certificate's DNS names) of one GET over a new TLS connection with SNI
    ``host``, verified against the test CA and ``host``."""
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=5)
    with (context or _context(ca)).wrap_socket(raw, server_hostname=host) as tls:
        names = [value for kind, value in tls.getpeercert().get("subjectAltName", ()) if kind == "DNS"]
        tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, dict(response.getheaders()), response.read(), names


def served_names(proxy, ca, host):
    return https_get(proxy, ca, host)[3]


def http_get(proxy, host, path):
    """(status, headers) of a plain HTTP GET that does not follow redirects."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        connection.close()


def certificates(ca, *names_and_domains):
    """proxy_certificates entries, and the keys' PEM texts."""
    entries = []
    for name, domain in names_and_domains:
        cert, key = ca.issue(domain)
        entries.append({"name": name, "cert": cert, "key": key})
    return entries


def run_verbose(project, module, params):
    command, env = project.playbook(module, params)
    completed = subprocess.run(command + ["-vvv"], env=env, capture_output=True, text=True, timeout=600, check=False)
    completed.env_result_path = env["DOCKERFLOW_RESULT_PATH"]
    return FlowProject.parse(completed), completed.stdout + completed.stderr


def key_lines(entries):
    """The base64 lines of the keys: none of them may appear anywhere."""
    return [line for entry in entries for line in entry["key"].splitlines() if line and not line.startswith("-----")]


def test_sni_tls_alpn_redirect_hsts_and_no_key_anywhere(https_project, proxy, ca):
    entries = certificates(ca, ("shop", SHOP), ("other", OTHER), ("default", FALLBACK))
    https_project.run("flow_deploy", {"health_path": "/health"})
    checked = https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": entries,
                                               "https_redirect": True, "hsts_max_age": 600}, check=True, diff=True)
    assert checked["changed"]
    result, output = run_verbose(https_project, "flow_proxy", {
        "service_domain": SHOP, "proxy_certificates": entries, "https_redirect": True, "hsts_max_age": 600})
    assert result["changed"] and [c["name"] for c in result["certificates"]] == ["default", "other", "shop"]
    for line in key_lines(entries):
        assert line not in output and line not in json.dumps(result) and line not in json.dumps(checked)

    # SNI: each domain gets its certificate, an unknown one (and none) the default
    assert served_names(proxy, ca, SHOP) == [SHOP]
    assert served_names(proxy, ca, OTHER) == [OTHER]
    unknown = _context(ca)
    unknown.check_hostname = False
    assert https_get(proxy, ca, "unknown.example.com", context=unknown)[3] == [FALLBACK]

    status, headers, body, _names = https_get(proxy, ca, SHOP, "/books")
    assert status == 200 and json.loads(body)["color"] == "blue"
    assert headers["strict-transport-security"] == "max-age=600"

    # plain HTTP: redirected, except the ACME challenge path, and no HSTS there
    status, headers = http_get(proxy, SHOP, "/books?x=1")
    assert status == 301 and headers["location"] == "https://%s/books?x=1" % SHOP
    status, headers = http_get(proxy, SHOP, "/.well-known/acme-challenge/token")
    assert status != 301 and "strict-transport-security" not in {name.lower() for name in headers}

    # TLS 1.1 refused, 1.2 served; h2 offered by ALPN
    old = _context(ca, minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        https_get(proxy, ca, SHOP, context=old)
    assert https_get(proxy, ca, SHOP, context=_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2))[0] == 200
    alpn = _context(ca)
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    with alpn.wrap_socket(socket.create_connection(("127.0.0.1", proxy.https_port), timeout=5),
                          server_hostname=SHOP) as tls:
        assert tls.selected_alpn_protocol() == "h2"

    # the keys' files: 0600, root's
    code, stat = proxy.container().exec_run(["find", "/usr/local/etc/haproxy/certs", "-name", "shop.pem",
                                             "-printf", "%m %U %p\n"])
    assert code == 0 and [line.split()[:2] for line in stat.decode().splitlines()] == [["600", "0"]], stat

    again = https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": entries})
    assert not again["changed"], "the same certificates again change nothing"


def test_a_bad_certificate_fails_in_one_line_and_the_old_one_keeps_serving(https_project, proxy, ca):
    https_project.run("flow_deploy", {"health_path": "/health"})
    good = certificates(ca, ("shop", SHOP))
    https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": good})
    before = served_names(proxy, ca, SHOP)
    other_cert, _other_key = ca.issue(SHOP)
    mismatched = [{"name": "shop", "cert": other_cert, "key": good[0]["key"]}]
    failed = https_project.run("flow_proxy", {"proxy_certificates": mismatched}, expect_failure=True)
    assert failed["msg"].startswith("proxy_certificates[0].key does not match proxy_certificates[0].cert")
    expired_cert, expired_key = ca.issue(SHOP, expired=True)
    failed = https_project.run("flow_proxy", {"proxy_certificates": [
        {"name": "shop", "cert": expired_cert, "key": expired_key}]}, expect_failure=True)
    assert failed["msg"].startswith("proxy_certificates[0].cert (certificate shop) expired on ")
    for line in key_lines(good) + key_lines([{"key": expired_key}]):
        assert line not in json.dumps(failed)
    assert served_names(proxy, ca, SHOP) == before and https_get(proxy, ca, SHOP)[0] == 200


def test_a_certificate_haproxy_refuses_never_reaches_a_restarted_proxy(https_project, proxy, ca):
    """A certificate that passes flow's checks but not HAProxy's (an RSA key of 1024 bits, below OpenSSL 3's default
    security level): the running proxy keeps the old one, and so does the proxy after a restart, and the refused key
    is not left in the volume. Before, the refused files were already written where the running configuration reads
    its certificates, so a restart loaded them (or failed to start)."""
    https_project.run("flow_deploy", {"health_path": "/health"})
    https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": certificates(ca, ("shop", SHOP))})
    before = served_names(proxy, ca, SHOP)
    weak_cert, weak_key = ca.issue(SHOP, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    failed = https_project.run("flow_proxy", {"proxy_certificates": [{"name": "shop", "cert": weak_cert, "key": weak_key}]},
                               expect_failure=True)
    assert "haproxy" in failed["msg"].lower() and len(failed["msg"].splitlines()) == 1, failed["msg"]
    assert served_names(proxy, ca, SHOP) == before
    proxy.container().restart(timeout=5)
    wait_for(lambda: _serves(proxy, ca), timeout=30, what="the restarted proxy serving HTTPS")
    assert served_names(proxy, ca, SHOP) == before
    weak_line = weak_key.splitlines()[1]
    code, found = proxy.container().exec_run(["grep", "-rlF", weak_line, "/usr/local/etc/haproxy"])
    assert code == 1, "the refused key is still in the volume: %s" % found.decode()


def _serves(proxy, ca):
    try:
        return https_get(proxy, ca, SHOP)[0] == 200
    except OSError:
        return False


def test_rotation_under_https_load_fails_no_request(https_project, proxy, ca):
    https_project.run("flow_deploy", {"health_path": "/health"})
    first = certificates(ca, ("shop", SHOP))
    https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": first})
    old, new_entries = _der(first), certificates(ca, ("shop", SHOP))
    new = _der(new_entries)
    loads = [HttpsLoad(proxy.https_port, SHOP, ca.cert, "/load", fresh=fresh) for fresh in (True, False)]
    for load in loads:
        load.start()
    time.sleep(1)
    rotated = https_project.run("flow_proxy", {"state": "synced", "proxy_certificates": new_entries})
    assert rotated["changed"]
    wait_for(lambda: loads[0].handshakes.get(new, 0) > 5, timeout=10, what="handshakes with the new certificate")
    for load in loads:
        load.finish()
    assert [load.failed for load in loads] == [0, 0], [load.errors[:3] for load in loads]
    assert all(load.ok > 10 for load in loads), [load.ok for load in loads]
    assert loads[0].handshakes.get(old) and set(loads[0].handshakes) == {old, new}, "old, then new: nothing else"


def _der(entries):
    return certificate_id(ssl.PEM_cert_to_DER_cert(entries[0]["cert"]))


def test_paths_on_the_module_host(https_project, proxy, ca, tmp_path):
    cert, key = ca.issue(SHOP)
    (tmp_path / "shop.crt").write_text(cert)
    (tmp_path / "shop.key").write_text(key)
    https_project.run("flow_deploy", {"health_path": "/health"})
    https_project.run("flow_proxy", {"service_domain": SHOP, "proxy_certificates": [
        {"name": "shop", "cert_path": str(tmp_path / "shop.crt"), "key_path": str(tmp_path / "shop.key")}]})
    assert served_names(proxy, ca, SHOP) == [SHOP]
    assert http_get(proxy, SHOP, "/books")[0] == 200, "no redirect asked: plain HTTP keeps serving"
