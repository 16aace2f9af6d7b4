# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What HTTPS adds to the rendered configuration (haproxy_config): the TLS defaults, the HTTPS bind of the
HTTP frontend, and a route's redirect to HTTPS and HSTS header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import crt_list_path

ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"  # HTTP-01 validation: never redirected to HTTPS
HSTS_MAX_AGE_LIMIT = 2 ** 31 - 1
# Mozilla's "intermediate" configuration (TLS 1.2 and 1.3; for TLS 1.2 only AEAD ciphers with forward secrecy).
TLS_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))
TLS_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
TLS_GLOBAL_LINES = [
    "    ssl-default-bind-ciphers %s" % TLS_CIPHERS,
    "    ssl-default-bind-ciphersuites %s" % TLS_CIPHERSUITES,
    # No TLS session tickets: each worker makes its own ticket key and never rotates it, so one key would
    # protect every session of a long-lived worker (no forward secrecy), and a reload or another proxy node
    # cannot resume them anyway. Session IDs still resume on the same worker.
    "    ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.2 no-tls-tickets",
]


def check_https(https_redirect: object, hsts_max_age: object) -> None:
    """FlowError naming the option for a value of a route's https_redirect or hsts_max_age that is not valid."""
    if not isinstance(https_redirect, bool):
        raise FlowError("https_redirect=%r is not valid: use true or false." % (https_redirect,))
    if isinstance(hsts_max_age, bool) or not isinstance(hsts_max_age, int) or not 0 <= hsts_max_age <= HSTS_MAX_AGE_LIMIT:
        raise FlowError("hsts_max_age=%r is not valid: use seconds from 0 (no header) to %d."
                        % (hsts_max_age, HSTS_MAX_AGE_LIMIT))


def https_bind_lines(address: str, port: int, certificates: str | None) -> list[str]:
    """The TLS bind, with ``certificates`` (their digest; None: no bind). SNI picks a certificate of the crt-list
    by its names; its first line is the default. The digest names the set's directory (proxy_certificates), so a
    new content is a new generation: the reload that activates it loads the new files (a worker reads its
    certificates when it starts).
    Why a reload rather than the runtime API's ``set ssl cert``: an update there lives in the running worker only,
    so the next reload (any switch) or a restart would have to find the same files anyway, and the reload is the
    path every configuration already takes, checked with ``haproxy -c`` first and confirmed by its generation."""
    if not certificates:
        return []
    return ["    bind %s:%d ssl crt-list %s alpn h2,http/1.1" % (address, port, crt_list_path(certificates))]


def https_rule_lines(https_redirect: bool, hsts_max_age: int) -> list[str]:
    """A route's redirect and HSTS, for its backends: a backend is reached only through the route's own rules (its
    paths, domain, preview and canary), so no other route's request gets them, whatever the rules' order."""
    lines = []
    if https_redirect:
        lines.append("    http-request redirect scheme https code 301 if !{ ssl_fc } !{ path_beg %s }" % ACME_CHALLENGE_PATH)
    if hsts_max_age:
        lines.append('    http-response set-header Strict-Transport-Security "max-age=%d" if { ssl_fc }' % hsts_max_age)
    return lines


def asked_https(recorded: Mapping[str, Any], asked: Mapping[str, Any] | None) -> dict[str, Any]:
    """https_redirect and hsts_max_age of a route: as asked, else as ``recorded`` (the route's), else off."""
    asked = asked or {}
    return {name: asked[name] if asked.get(name) is not None else recorded.get(name, off)
            for name, off in (("https_redirect", False), ("hsts_max_age", 0))}
