# -*- coding: utf-8 -*-
"""The load generator's targets: http or https on loopback (or a host the caller allows), nothing else; an https
target gets a connection that does not check the test proxy's certificate."""

from __future__ import annotations

import http.client
import os
import ssl
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.abspath(__file__).rsplit(os.sep + "tests" + os.sep, 1)[0], "benchmarks"))

from loadgen import check_loopback, connection_factory  # noqa: E402


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/bench", "https://127.0.0.1:8443/bench", "https://[::1]/x"])
def test_http_and_https_on_loopback_are_taken(url):
    assert check_loopback(url).hostname in ("127.0.0.1", "::1")


@pytest.mark.parametrize("url", ["https://example.com/", "ftp://127.0.0.1/", "http://10.0.0.1/"])
def test_anything_else_is_refused(url):
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(url)


def test_an_https_target_gets_an_unverified_tls_connection_on_its_port():
    connection = connection_factory(check_loopback("https://127.0.0.1:8443/bench"), timeout=3)()
    assert isinstance(connection, http.client.HTTPSConnection) and connection.port == 8443
    assert connection._context.verify_mode == ssl.CERT_NONE and not connection._context.check_hostname
    plain = connection_factory(check_loopback("http://127.0.0.1/bench"), timeout=3)()
    assert not isinstance(plain, http.client.HTTPSConnection) and plain.port == 80
