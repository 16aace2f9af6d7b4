# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME HTTP-01 challenges answered by every proxy node from Consul.

The issuer publishes each token's key authorization at ``dockerflow/proxy/acme-challenges/<token>``;
every proxy node sends ``GET /.well-known/acme-challenge/<token>`` to Consul's HTTP API as
``/v1/kv/dockerflow/proxy/acme-challenges/<token>?raw``. Consul is read at each request, so the
ACME server may ask any node, with no reload and nothing pushed to the nodes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import KV_PREFIX
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_words import config_word

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient

CHALLENGE_PREFIX = "%s/proxy/acme-challenges/" % KV_PREFIX
CHALLENGE_PATH = "/.well-known/acme-challenge/"
# RFC 8555 8.3: a token is base64url (no padding); anything else never reaches Consul (the frontend's
# path_reg is the same alphabet).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ACME_BACKEND = "be_dockerflow_acme"
# The ACL of the frontend's requests for a challenge; an HTTPS redirect must not apply to them.
ACME_ACL = "acme_challenge"


def challenge_key(token: str) -> str:
    """The Consul key of ``token``'s key authorization; FlowError for a token that is not base64url."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise FlowError("token=%r is not valid: an ACME token is 1-256 letters, digits, '-' or '_' (base64url)." % (token,))
    return CHALLENGE_PREFIX + token


def publish(client: ConsulClient, challenges: dict[str, str]) -> list[str]:
    """Record each token's key authorization; the tokens whose value changed."""
    changed = []
    for token, authorization in sorted(challenges.items()):
        key = challenge_key(token)
        _index, entry = client.call("reading ACME challenge %s" % token, client.api.kv.get, key)
        if entry and (entry.get("Value") or b"").decode("utf-8") == authorization:
            continue
        client.call("publishing ACME challenge %s" % token, client.api.kv.put, key, authorization)
        changed.append(token)
    return changed


def remove(client: ConsulClient, tokens: list[str]) -> list[str]:
    """Delete the tokens' keys; the tokens that were there."""
    removed = []
    for token in sorted(set(tokens)):
        key = challenge_key(token)
        _index, entry = client.call("reading ACME challenge %s" % token, client.api.kv.get, key)
        if entry is None:
            continue
        client.call("removing ACME challenge %s" % token, client.api.kv.delete, key)
        removed.append(token)
    return removed


def frontend_rule_lines() -> list[str]:
    """First rules of the HTTP frontend: a challenge path with a token that is not base64url gets 404 here,
    before any other rule (an HTTPS redirect must leave ``ACME_ACL`` alone)."""
    return [
        "    acl %s path_beg %s" % (ACME_ACL, CHALLENGE_PATH),
        "    http-request return status 404 if %s !{ path_reg '^%s[A-Za-z0-9_-]+$' }"
        % (ACME_ACL, CHALLENGE_PATH.replace(".", "[.]")),
    ]


def frontend_backend_lines() -> list[str]:
    """The first use_backend: a GET of a valid token goes to Consul. Other methods and every other path
    (``/.well-known/`` too) are routed as before."""
    return ["    use_backend %s if %s { method GET }" % (ACME_BACKEND, ACME_ACL)]


def backend_lines(consul: str, token: str | None) -> list[str]:
    """The backend that asks Consul's KV API (``consul``: HOST:PORT) for the token of the path, with only what the
    proxy adds: the client's query, credentials and Consul token never reach Consul, nor Consul's headers it."""
    host, port = consul_http_address(consul)
    server = "[%s]" % host.strip("[]") if ":" in host else host
    lines = [
        "",
        "backend %s" % ACME_BACKEND,
        "    http-request set-path %skv/%s%%[path,field(4,/)]" % ("/v1/", CHALLENGE_PREFIX),
        "    http-request set-query raw",
        "    http-request del-header Authorization",
        "    http-request del-header X-Consul-Token",
        "    http-request del-header Cookie",
    ]
    if token:
        lines.append("    http-request set-header X-Consul-Token %s" % config_word(token, "token", "proxy_acme_consul_token"))
    return lines + [
        "    http-response del-header X-Consul- -m beg",
        "    server consul %s:%s" % (server, config_word(port, "port", "proxy_acme_consul")),
    ]


def consul_http_address(value: object) -> tuple[str, int]:
    """(host, port) of proxy_acme_consul, ``HOST:PORT``."""
    host, _colon, port = str(value).rpartition(":")
    if not host or not port.isdigit():
        raise FlowError("proxy_acme_consul=%r is not valid: use HOST:PORT (Consul's HTTP API as the proxy host "
                        "reaches it)." % (value,))
    return config_word(host, "address", "proxy_acme_consul"), int(port)
