# -*- coding: utf-8 -*-
"""docker_connection_settings and default_probe_address: pure, no engine needed."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.connection import (
    _connection_error,
    default_probe_address,
    docker_connection_settings,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


@pytest.fixture
def cert_dir(tmp_path):
    """A directory holding ca.pem, cert.pem and key.pem (contents do not matter here)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    for name in ("ca", "cert", "key"):
        (directory / (name + ".pem")).write_text("x")
    return str(directory)


def settings(**kwargs):
    kwargs.setdefault("environ", {})
    return docker_connection_settings(**kwargs)


def test_unix_socket_by_default():
    assert settings() == ("unix:///var/run/docker.sock", None, False, [])


def test_docker_host_env_fallback():
    base_url, tls_files, verify, warnings = settings(environ={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})
    assert base_url == "unix:///run/user/1000/docker.sock"
    assert (tls_files, verify, warnings) == (None, False, [])


def test_parameter_beats_docker_host_env():
    assert settings(docker_host="unix:///a.sock", environ={"DOCKER_HOST": "unix:///b.sock"})[0] == "unix:///a.sock"


def test_uses_os_environ_when_no_environ_given(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///from/os.sock")
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    assert docker_connection_settings()[0] == "unix:///from/os.sock"


def test_cert_path_gives_tls_files_and_verify(cert_dir):
    base_url, tls_files, verify, warnings = settings(docker_host="tcp://docker.example.com:2376", cert_path=cert_dir)
    assert base_url == "tcp://docker.example.com:2376"
    assert tls_files == {name: os.path.join(cert_dir, name + ".pem") for name in ("ca", "cert", "key")}
    assert verify is True
    assert warnings == []


def test_cert_path_from_env(cert_dir):
    environ = {"DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_CERT_PATH": cert_dir}
    _base_url, tls_files, verify, warnings = settings(environ=environ)
    assert tls_files["ca"] == os.path.join(cert_dir, "ca.pem")
    assert verify is True
    assert warnings == []


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("yes", True), ("0", False),
                                           ("false", False), ("False", False), ("", True)])
def test_tls_verify_env_with_cert_path(cert_dir, raw, expected):
    environ = {"DOCKER_TLS_VERIFY": raw, "DOCKER_CERT_PATH": cert_dir}
    assert settings(docker_host="tcp://h:2376", environ=environ)[2] is expected


@pytest.mark.parametrize("raw, expected", [("1", True), ("0", False), ("", False)])
def test_tls_verify_env_without_cert_path(raw, expected):
    assert settings(environ={"DOCKER_TLS_VERIFY": raw})[2] is expected


@pytest.mark.parametrize("tls_verify", [True, False])
def test_tls_verify_parameter_beats_env(cert_dir, tls_verify):
    environ = {"DOCKER_TLS_VERIFY": "1" if not tls_verify else "0"}
    assert settings(cert_path=cert_dir, tls_verify=tls_verify, environ=environ)[2] is tls_verify


def test_cert_path_parameter_beats_env(cert_dir, tmp_path):
    environ = {"DOCKER_CERT_PATH": str(tmp_path / "elsewhere")}
    assert settings(cert_path=cert_dir, environ=environ)[1]["key"] == os.path.join(cert_dir, "key.pem")


def test_missing_cert_files_are_named(tmp_path):
    directory = tmp_path / "partial"
    directory.mkdir()
    (directory / "ca.pem").write_text("x")
    with pytest.raises(FlowError) as info:
        settings(docker_host="tcp://h:2376", cert_path=str(directory))
    assert str(info.value) == "cert_path %s lacks cert.pem, key.pem." % directory


def test_missing_cert_directory(tmp_path):
    with pytest.raises(FlowError, match=r"lacks ca\.pem, cert\.pem, key\.pem\.$"):
        settings(environ={"DOCKER_CERT_PATH": str(tmp_path / "nope")})


@pytest.mark.parametrize("host", ["tcp://10.0.0.5:2375", "tcp://docker.example.com:2375", "tcp://[2001:db8::1]:2375"])
def test_plain_tcp_to_a_remote_host_warns(host):
    _base_url, tls_files, _verify, warnings = settings(docker_host=host)
    assert tls_files is None
    assert len(warnings) == 1
    assert warnings[0].startswith("docker_host %s is plain TCP without TLS" % host)
    assert "cert_path" in warnings[0]


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375", "tcp://127.0.0.2:2375"])
def test_plain_tcp_to_loopback_warns_about_local_users(host):
    # Unlike the unix socket (file permissions), a loopback port lets any local user drive the engine.
    warnings = settings(docker_host=host)[3]
    assert warnings == ["docker_host %s is plain TCP without TLS: every user and process on that machine can "
                        "control that engine. Set cert_path to use TLS." % host]


def test_tls_tcp_does_not_warn(cert_dir):
    assert settings(docker_host="tcp://10.0.0.5:2376", cert_path=cert_dir)[3] == []


@pytest.mark.parametrize("host", ["ssh://deploy@10.0.0.5", "unix:///x.sock", "npipe:////./pipe/docker_engine",
                                  "https://10.0.0.5:2376"])
def test_other_schemes_are_accepted_without_warning(host):
    base_url, _tls_files, _verify, warnings = settings(docker_host=host)
    assert base_url == host and warnings == []


@pytest.mark.parametrize("host", ["ftp://10.0.0.5", "/var/run/docker.sock", "docker.example.com:2375", "udp://h:1",
                                  "tcp://[]:1", "tcp://[x]:2375", "tcp://h:port"])
def test_bad_scheme(host):
    with pytest.raises(FlowError) as info:
        settings(docker_host=host)
    assert str(info.value) == (
        "docker_host=%r is not valid: use unix:///path, tcp://HOST:PORT or ssh://USER@HOST." % host
    )


def test_bad_scheme_from_env_is_reported_too():
    with pytest.raises(FlowError, match=r"^docker_host='ftp://x' is not valid"):
        settings(environ={"DOCKER_HOST": "ftp://x"})


# --- default_probe_address ------------------------------------------------------------------


@pytest.mark.parametrize(
    "docker_host, publish_address, expected",
    [
        (None, "10.1.2.3", "10.1.2.3"),
        ("tcp://10.0.0.5:2375", "192.168.1.10", "192.168.1.10"),
        ("tcp://10.0.0.5:2375", "0.0.0.0", "10.0.0.5"),
        ("tcp://docker.example.com:2376", None, "docker.example.com"),
        ("https://10.0.0.6:2376", "", "10.0.0.6"),
        ("ssh://deploy@10.0.0.7:22", "::", "10.0.0.7"),
        ("http://[2001:db8::1]:2375", "0.0.0.0", "2001:db8::1"),
        ("unix:///var/run/docker.sock", "0.0.0.0", "127.0.0.1"),
        ("tcp://", "0.0.0.0", "127.0.0.1"),
    ],
)
def test_default_probe_address(monkeypatch, docker_host, publish_address, expected):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert default_probe_address(docker_host, publish_address) == expected


def test_default_probe_address_falls_back_to_docker_host_env(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.9.8.7:2375")
    assert default_probe_address(None, "0.0.0.0") == "10.9.8.7"


def test_default_probe_address_without_anything(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert default_probe_address(None, None) == "127.0.0.1"


def test_plain_http_to_a_remote_host_warns_too():
    warnings = settings(docker_host="http://10.0.0.5:2375")[3]
    assert len(warnings) == 1 and "without TLS" in warnings[0]


def test_plain_http_to_loopback_warns_too():
    assert "every user and process" in settings(docker_host="http://127.0.0.1:2375")[3][0]


# --- why an engine cannot be reached (texts as docker 7.1 / urllib3 2 raise them; the integration
# tests in test_security_docker_tls.py meet the TLS ones against a real engine) ------------------

_POOL = ("Error while fetching server API version: HTTPSConnectionPool(host='127.0.0.1', port=2376): "
         "Max retries exceeded with url: /version ")


@pytest.mark.parametrize("text, expected", [
    (_POOL + "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
     "unable to get local issuer certificate (_ssl.c:1006)')))",
     "TLS: the engine's certificate is not trusted (unable to get local issuer certificate): is ca.pem in cert_path /c the CA "
     "that signed it?"),
    (_POOL + "(Caused by SSLError(SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)')))",
     "TLS: the engine closed the connection, most likely rejecting the client certificate: are cert.pem and key.pem in "
     "cert_path /c signed by the CA the engine trusts (its --tlscacert)?"),
    ("Error while fetching server API version: 400 Client Error for http://127.0.0.1:2376/version: Bad Request "
     "(\"Client sent an HTTP request to an HTTPS server.\")",
     "the engine only speaks TLS: set cert_path (ca.pem, cert.pem, key.pem) for it."),
    (_POOL + "(Caused by NewConnectionError(\"HTTPSConnection(host='127.0.0.1', port=2376): Failed to establish a new "
     "connection: [Errno 111] Connection refused\"))",
     "Failed to establish a new connection: [Errno 111] Connection refused."),
    (_POOL + "(Caused by SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)')))",
     "TLS handshake failed: SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)')."),
    ("Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))",
     "No such file or directory."),
])
def test_connection_errors_say_what_to_fix(text, expected):
    assert _connection_error(Exception(text), "/c") == expected
