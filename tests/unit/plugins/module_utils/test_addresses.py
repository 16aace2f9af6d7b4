# -*- coding: utf-8 -*-
"""addresses: which hosts are loopback, and where a local process reaches a bound socket."""

from __future__ import annotations

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import is_loopback, local_address


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])
def test_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.5", "0.0.0.0", "*", "::", "", None, "docker.example.com", "localhost.example.com",
                                  "[2001:db8::1]"])
def test_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("bind, expected", [("*", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"),
                                            ("::", "::1"), ("[::]", "::1"), ("127.0.0.2", "127.0.0.2"),
                                            ("[::1]", "::1"), ("10.0.0.5", "10.0.0.5")])
def test_local_address(bind, expected):
    assert local_address(bind) == expected
