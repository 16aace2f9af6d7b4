# -*- coding: utf-8 -*-
"""HTTPS in the rendered configuration (proxy_https) and in a proxy run (ProxyFlow with certificates): the TLS bind
only once a certificate is recorded, the redirect never for the ACME path, HSTS only over TLS, a new certificate
content as a new generation, check mode and idempotence, and no key in any result."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from test_proxy_flow import Proxied

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import ProxySettings, Route, render
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import certificates_digest, given_certificates
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import PRIVATE_MODE, archive
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_flow import ProxyFlow
from support.pem import TestCA

SETTINGS = ProxySettings(http_address="127.0.0.1", http_port=8080, https_port=8443)


def _backend(config, name):
    section = config.split("\nbackend %s\n" % name, 1)[1]
    return section.split("\n\n", 1)[0].splitlines()


def test_no_certificate_no_tls():
    config, _generation = render([Route("shop", "blue", paths=("/",))], SETTINGS)
    assert " ssl " not in config and "ssl-default" not in config and "8443" not in config


def test_a_certificate_adds_the_tls_bind_and_modern_defaults():
    config, generation = render([Route("shop", "blue", paths=("/",))], SETTINGS, certificates="abc123")
    lines = config.splitlines()
    assert "    bind 127.0.0.1:8443 ssl crt-list /usr/local/etc/haproxy/certs/abc123/certs.list alpn h2,http/1.1" in lines
    assert "    bind 127.0.0.1:8080" in lines, "plain HTTP stays"
    assert any(line.startswith("    ssl-default-bind-options") and "ssl-min-ver TLSv1.2" in line for line in lines)
    assert any(line.startswith("    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256") for line in lines)
    assert "RC4" not in config and "CBC" not in config and "SHA1" not in config
    assert render([Route("shop", "blue", paths=("/",))], SETTINGS, certificates="def456")[1] != generation


def test_the_redirect_spares_the_acme_path_and_hsts_is_only_over_tls():
    route = Route("shop", "blue", paths=("/",), https_redirect=True, hsts_max_age=600)
    config, _generation = render([route, Route("other", "blue", paths=("/other",))], SETTINGS, certificates="a1")
    shop = _backend(config, "be_shop_blue")
    assert ("    http-request redirect scheme https code 301 if !{ ssl_fc } !{ path_beg /.well-known/acme-challenge/ }"
            in shop)
    assert '    http-response set-header Strict-Transport-Security "max-age=600" if { ssl_fc }' in shop
    other = _backend(config, "be_other_blue")
    assert not any("redirect" in line or "Strict" in line for line in other), "only for that route"
    plain, _generation = render([route], SETTINGS)
    assert "redirect" not in plain and "Strict" not in plain, "no certificate: no redirect to a port not served"


@pytest.mark.parametrize("asked, message", [
    (dict(hsts_max_age=-1), "hsts_max_age=-1 is not valid"),
    (dict(hsts_max_age=True), "hsts_max_age=True is not valid"),
    (dict(https_redirect="yes"), "https_redirect='yes' is not valid"),
])
def test_bad_https_values_are_refused(asked, message):
    with pytest.raises(FlowError, match=message):
        Route("shop", "blue", paths=("/",), **asked).validated()


def test_older_route_documents_stay_valid_and_unchanged():
    recorded = Route("shop", "blue", paths=("/",)).as_dict()
    assert "https_redirect" not in recorded and "hsts_max_age" not in recorded
    route = Route.from_dict("shop", recorded)
    assert route.https_redirect is False and route.hsts_max_age == 0
    assert Route.from_dict("shop", Route("shop", "blue", paths=("/",), https_redirect=True).as_dict()).https_redirect


@pytest.fixture(scope="module")
def ca():
    return TestCA()


def _run(proxied, certificates=(), check_mode=False, state="synced", **options):
    flow = proxied.flow(check_mode=check_mode)
    return ProxyFlow(flow, proxied.node, switch_timeout=0, certificates=certificates).run(state, **options)


def test_recording_a_certificate_writes_its_files_and_reloads_once(tmp_path, ca):
    proxied = Proxied(tmp_path)
    cert, key = ca.issue("shop.example.com")
    given = given_certificates([{"name": "shop", "cert": cert, "key": key}])
    predicted = _run(proxied, given, check_mode=True)
    assert predicted["changed"] and proxied.consul.kv.entries.get("dockerflow/proxy/certificates/dockerflow-proxy/shop") is None
    assert proxied.node.private_files == {}
    result = _run(proxied, given)
    assert result["changed"] and result["certificates"][0]["domains"] == ["shop.example.com"]
    digest = result_digest(given)
    assert proxied.node.private_files == {"certs/%s/shop.pem" % digest: cert + key,
                                          "certs/%s/certs.list" % digest: "/usr/local/etc/haproxy/certs/%s/shop.pem\n" % digest}
    assert "crt-list" in proxied.node.running
    text = json.dumps(result)
    assert key.splitlines()[1] not in text and "PRIVATE KEY" not in text
    assert [diff["after_header"] for diff in result["diff"]] == ["haproxy.cfg (new)", "certificates (new)"]
    commands = len(proxied.node.commands)
    again = _run(proxied, given)
    assert not again["changed"], "the same content changes nothing"
    assert len(proxied.node.commands) == commands, "nothing stale to remove: no command in the container"
    plain = _run(proxied)  # a run without the option keeps serving what is recorded
    assert not plain["changed"] and "crt-list" in proxied.node.running


def test_a_new_content_is_a_new_generation(tmp_path, ca):
    proxied = Proxied(tmp_path)
    first = ca.issue("shop.example.com")
    _run(proxied, given_certificates([{"name": "shop", "cert": first[0], "key": first[1]}]))
    activated = len(proxied.node.activated)
    second = ca.issue("shop.example.com")
    renewed = given_certificates([{"name": "shop", "cert": second[0], "key": second[1]}])
    result = _run(proxied, renewed)
    assert result["changed"] and len(proxied.node.activated) == activated + 1
    digest = result_digest(renewed)
    assert proxied.node.private_files["certs/%s/shop.pem" % digest] == second[0] + second[1]
    assert all(name.startswith("certs/%s/" % digest) for name in proxied.node.private_files), "the old set is removed"


def test_a_failed_activation_leaves_the_running_set_alone(tmp_path, ca):
    """The refused set is written beside the running one, which the running configuration names: a restart of the
    proxy loads the running set (tests/integration/test_proxy_https.py, for real)."""
    proxied = Proxied(tmp_path)
    first = _issued(ca)
    _run(proxied, first)
    running = proxied.node.running
    proxied.node.fail_activation = True
    with pytest.raises(FlowError):
        _run(proxied, _issued(ca))
    assert proxied.node.running == running and "certs/%s/certs.list" % result_digest(first) in running
    assert sorted(proxied.node.private_files) == ["certs/%s/%s" % (result_digest(first), name)
                                                  for name in ("certs.list", "shop.pem")], "the refused set is removed"


def test_a_failed_activation_records_nothing(tmp_path, ca):
    proxied = Proxied(tmp_path)
    _run(proxied)
    proxied.node.fail_activation = True
    cert, key = ca.issue("shop.example.com")
    with pytest.raises(FlowError):
        _run(proxied, given_certificates([{"name": "shop", "cert": cert, "key": key}]))
    assert not [name for name in proxied.consul.kv.entries if name.startswith("dockerflow/proxy/certificates/")]


def _issued(ca):
    cert, key = ca.issue("shop.example.com")
    return given_certificates([{"name": "shop", "cert": cert, "key": key}])


def result_digest(given):
    return certificates_digest({certificate.name: certificate for certificate in given})


def _modes(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {member.name: (oct(member.mode), member.isdir(), member.uid) for member in tar.getmembers()}


def test_the_certificates_files_are_private_and_the_others_not():
    assert _modes(archive({"certs/a1/shop.pem": "x"}, mode=PRIVATE_MODE)) == {
        "certs": ("0o700", True, 0), "certs/a1": ("0o700", True, 0), "certs/a1/shop.pem": ("0o600", False, 0)}
    assert _modes(archive({"certs.list": "x", "dockerflow-cli.sh": "y"})) == {
        "certs.list": ("0o644", False, 0), "dockerflow-cli.sh": ("0o755", False, 0)}
