# -*- coding: utf-8 -*-
"""proxy_certificates: a certificate given to flow_proxy is checked (name, PEM, key, expiry) before anything is
recorded, and a bad one fails in one line naming the parameter, without any key text."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import (
    Certificate,
    certificate_files,
    certificates_digest,
    changed_certificates,
    given_certificates,
)
from support.pem import TestCA


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture(scope="module")
def shop(ca):
    return ca.issue("shop.example.com", "www.shop.example.com")


def _refused(entries, read=None):
    with pytest.raises(FlowError) as raised:
        given_certificates(entries, read=read)
    message = raised.value.msg
    assert "\n" not in message
    for entry in entries:
        key = entry.get("key") or ""
        assert "PRIVATE KEY" not in message and (not key or key.splitlines()[1] not in message)
    return message


def test_a_good_certificate_gives_its_domains_and_end(shop):
    cert, key = shop
    [certificate] = given_certificates([{"name": "shop", "cert": cert, "key": key}])
    assert certificate.domains == ("shop.example.com", "www.shop.example.com")
    assert certificate.not_after.endswith("Z")
    assert "PRIVATE" not in repr(certificate) and key not in str(certificate.summary())


def test_paths_are_read_on_the_module_host(shop, tmp_path):
    cert, key = shop
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    [certificate] = given_certificates([{"name": "shop", "cert_path": str(tmp_path / "c.pem"),
                                         "key_path": str(tmp_path / "k.pem")}])
    assert certificate.key == key


def test_a_key_of_another_certificate_is_refused(ca, shop):
    _other_cert, other_key = ca.issue("other.example.com")
    message = _refused([{"name": "shop", "cert": shop[0], "key": other_key}])
    assert message.startswith("proxy_certificates[0].key does not match proxy_certificates[0].cert")


def test_an_expired_certificate_is_refused(ca):
    cert, key = ca.issue("old.example.com", expired=True)
    message = _refused([{"name": "old", "cert": cert, "key": key}])
    assert message.startswith("proxy_certificates[0].cert (certificate old) expired on ")


@pytest.mark.parametrize("name", ["a b", "../etc", "", "x" * 65, "a.pem", 7])
def test_a_name_that_is_no_plain_word_is_refused(shop, name):
    message = _refused([{"name": name, "cert": shop[0], "key": shop[1]}])
    assert message.startswith("proxy_certificates[0].name=")


def test_a_key_that_is_no_key_is_refused_without_its_text(shop):
    garbled = shop[1].replace("A", "B", 5)
    message = _refused([{"name": "shop", "cert": shop[0], "key": garbled}])
    assert message == "proxy_certificates[0].key is not an unencrypted PEM private key (RSA or EC)."


def test_cert_and_its_path_exclude_each_other(shop):
    message = _refused([{"name": "shop", "cert": shop[0], "cert_path": "/x", "key": shop[1]}])
    assert message == "proxy_certificates[0]: give exactly one of cert and cert_path."


def test_an_unreadable_path_is_named(shop):
    message = _refused([{"name": "shop", "cert": shop[0], "key_path": "/nonexistent/k.pem"}])
    assert message.startswith("proxy_certificates[0].key_path /nonexistent/k.pem cannot be read")


def test_the_second_entry_is_named(ca, shop):
    cert, _key = ca.issue("b.example.com")
    message = _refused([{"name": "a", "cert": shop[0], "key": shop[1]}, {"name": "b", "cert": cert, "key": shop[1]}])
    assert message.startswith("proxy_certificates[1].key does not match")


def test_a_name_given_twice_is_refused(shop):
    entry = {"name": "shop", "cert": shop[0], "key": shop[1]}
    assert _refused([entry, entry]).startswith("proxy_certificates[1].name=shop is given twice")


def test_files_list_the_default_first_and_the_digest_follows_the_content(ca, shop):
    other = ca.issue("a.example.com")
    recorded = {certificate.name: certificate for certificate in given_certificates([
        {"name": "alpha", "cert": other[0], "key": other[1]}, {"name": "default", "cert": shop[0], "key": shop[1]}])}
    digest = certificates_digest(recorded)
    files = certificate_files(recorded)
    assert sorted(files) == ["certs/%s/%s" % (digest, name) for name in ("alpha.pem", "certs.list", "default.pem")]
    assert files["certs/%s/certs.list" % digest].splitlines() == [
        "/usr/local/etc/haproxy/certs/%s/default.pem" % digest, "/usr/local/etc/haproxy/certs/%s/alpha.pem" % digest]
    assert files["certs/%s/alpha.pem" % digest] == other[0] + other[1]
    renewed = ca.issue("a.example.com")
    changed = dict(recorded, alpha=Certificate(name="alpha", cert=renewed[0], key=renewed[1]))
    assert certificates_digest(changed) != certificates_digest(recorded)
    assert certificates_digest({}) is None and certificate_files({}) == {}
    assert changed_certificates(recorded.values(), recorded) == []
    assert [c.name for c in changed_certificates(changed.values(), recorded)] == ["alpha"]
