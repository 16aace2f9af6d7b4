# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reaching a Docker engine: its address and TLS files, the client, and why a connection failed."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import ParseResult, urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.addresses import is_loopback
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    import docker
    import docker.errors

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by connect
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = str(exc)


def docker_connection_settings(
    docker_host: str | None = None,
    cert_path: str | None = None,
    tls_verify: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str] | None, bool, list[str]]:
    """Resolve the engine address and TLS files the way the docker CLI does.

    Returns (base_url, tls_files or None, verify, warnings).
    """
    environ = os.environ if environ is None else environ
    warnings = []
    base_url = docker_host or environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    cert_path = cert_path or environ.get("DOCKER_CERT_PATH")
    if tls_verify is None:
        env_verify = environ.get("DOCKER_TLS_VERIFY")
        tls_verify = bool(env_verify) and env_verify not in ("0", "false", "False")
        if cert_path and not env_verify:
            tls_verify = True
    parsed = _parse_url(base_url)
    if parsed is None or parsed.scheme not in ("unix", "tcp", "http", "https", "ssh", "npipe"):
        raise FlowError(
            "docker_host=%r is not valid: use unix:///path, tcp://HOST:PORT or ssh://USER@HOST." % base_url
        )
    tls_files = None
    if cert_path:
        tls_files = {name: os.path.join(cert_path, name + ".pem") for name in ("ca", "cert", "key")}
        missing = [path for path in tls_files.values() if not os.path.isfile(path)]
        if missing:
            raise FlowError("cert_path %s lacks %s." % (cert_path, ", ".join(os.path.basename(m) for m in missing)))
    elif parsed.scheme in ("tcp", "http"):
        who = "every user and process on that machine" if is_loopback(parsed.hostname) else "anyone on the network"
        warnings.append(
            "docker_host %s is plain TCP without TLS: %s can control that engine. "
            "Set cert_path to use TLS." % (base_url, who)
        )
    return base_url, tls_files, tls_verify, warnings


def connect(
    docker_host: str | None = None, cert_path: str | None = None, tls_verify: bool | None = None, timeout: int = 60
) -> tuple[docker.DockerClient, list[str]]:
    """A DockerClient with the API version negotiated, and the warnings found on the way."""
    if not HAS_DOCKER:
        raise FlowError("The docker Python package (Docker SDK) is required: %s." % DOCKER_IMPORT_ERROR)
    base_url, tls_files, verify, warnings = docker_connection_settings(docker_host, cert_path, tls_verify)
    tls = False
    if tls_files:
        tls = docker.tls.TLSConfig(
            client_cert=(tls_files["cert"], tls_files["key"]),
            ca_cert=tls_files["ca"] if verify else None,
            verify=tls_files["ca"] if verify else False,
        )
        if base_url.startswith("tcp://"):
            base_url = "https://" + base_url[len("tcp://"):]
    try:
        client = _DockerClient(base_url=base_url, version="auto", tls=tls, timeout=timeout)
    except docker.errors.DockerException as exc:
        raise FlowError("Cannot reach the Docker engine at %s (docker_host): %s" % (base_url, _connection_error(exc, cert_path)))
    return client, warnings


if HAS_DOCKER:

    class _APIClient(docker.APIClient):
        """Keeps the TLS settings of cert_path and tls_verify: requests otherwise replaces them,
        for every request, with REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from the environment
        (https://github.com/psf/requests/issues/3829), so the engine's CA would not be trusted
        and tls_verify=false would still verify."""

        def merge_environment_settings(
            self, url: str, proxies: Mapping[str, str] | None, stream: bool | None, verify: bool | str | None, cert: Any
        ) -> dict[str, Any]:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if verify is None:
                settings["verify"] = self.verify
            return settings

    class _DockerClient(docker.DockerClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:  # pylint: disable=super-init-not-called
            # DockerClient.__init__ only builds its APIClient: this builds ours instead.
            self.api = _APIClient(*args, **kwargs)


def _connection_error(exc: Exception, cert_path: str | None) -> str:
    """Why the engine cannot be reached, in words that point at the option to fix."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = re.search(r"certificate verify failed: ([^(]*)", text)
        return "TLS: the engine's certificate is not trusted (%s): is ca.pem in cert_path %s the CA that signed it?" % (
            (reason.group(1).strip() if reason else "certificate verify failed"), cert_path)
    if re.search(r"alert (bad certificate|certificate required|unknown ca)|SSLEOFError|EOF occurred in violation", text):
        # TLS 1.3 engines refuse a client certificate after the handshake: the client sees an EOF.
        return ("TLS: the engine closed the connection, most likely rejecting the client certificate: are cert.pem "
                "and key.pem in cert_path %s signed by the CA the engine trusts (its --tlscacert)?" % cert_path)
    if "HTTP request to an HTTPS server" in text:
        return "the engine only speaks TLS: set cert_path (ca.pem, cert.pem, key.pem) for it."
    if "Caused by" in text:
        cause = _caused_by(text)
        return ("TLS handshake failed: %s." if "SSL" in text.rsplit("Caused by", maxsplit=1)[-1] else "%s.") % cause
    os_error = re.search(r"\w+Error\(\d+, '([^']*)'\)", text)  # ('Connection aborted.', FileNotFoundError(2, '...'))
    if os_error:
        return "%s." % os_error.group(1)
    return "%s." % short_error(exc)


def _caused_by(text: str) -> str:
    """The reason inside urllib3's '... Max retries exceeded ... (Caused by X("<connection>: reason"))'."""
    cause = text.split("Caused by", 1)[1].strip()
    wrapped = re.match(r"\w+\((.*)\)\)$", cause, re.S)  # X(...) and the ')' of '(Caused by'
    cause = (wrapped.group(1) if wrapped else cause).strip("'\"")
    cause = re.sub(r"^(<[^>]*>|\w+\(host=[^)]*\)): ", "", cause)  # which connection: the message names it
    return re.sub(r"\s+", " ", cause).rstrip(".")[:300]


def short_error(exc: Exception) -> str:
    """An engine or connection error on one line, without urllib3's retry story."""
    text = str(exc).strip()
    for marker in ("Caused by", "(Caused"):
        if marker in text:
            text = text.split(marker, maxsplit=1)[0]
    return re.sub(r"\s+", " ", text)[:300].strip() or exc.__class__.__name__


def default_probe_address(docker_host: str | None, publish_address: str | None) -> str:
    """Where published ports can be reached from here: the bind address, else the engine's host."""
    if publish_address and publish_address not in ("0.0.0.0", "::", ""):
        return publish_address
    url = docker_host or os.environ.get("DOCKER_HOST") or ""
    parsed = _parse_url(url)  # an invalid docker_host is reported when connecting
    if parsed is not None and parsed.scheme in ("tcp", "http", "https", "ssh") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"


def _parse_url(url: str) -> ParseResult | None:
    """urlparse's result, or None when the host or port part does not parse ('tcp://[x]:1', 'tcp://h:x')."""
    try:
        parsed = urlparse(url)
        _checked = (parsed.hostname, parsed.port)  # both raise ValueError on such URLs
    except ValueError:
        return None
    return parsed
