# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul agent API, over the standard library: the three calls a registrator needs."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.registration import url_host

from .settings import valid_address


class ConsulAgent:
    """The three agent calls a registrator needs, over the standard library.

    Takes the same ``consul_address`` forms as ``consul_client.ConsulClient`` and raises
    FlowErrors naming the address; no proxy settings apply (the agent is local).
    """

    def __init__(self, address: str, token: str | None = None, timeout: float = 5) -> None:
        text = address if "//" in address else "http://" + address
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not valid_address(parsed.hostname):
            raise FlowError("consul address %r is not valid: expected http(s)://HOST:PORT." % address)
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 8500)
        except ValueError:
            raise FlowError("consul address %r has an invalid port." % address)
        self.address = address
        self.base = "%s://%s:%d" % (parsed.scheme, url_host(parsed.hostname), port)
        self.token = token or None
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, method: str, path: str, body: Any = None, what: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip().splitlines()
            if exc.code == 403:
                raise FlowError(
                    "Consul at %s denied %s: the ACL token (CONSUL_HTTP_TOKEN) lacks the permission." % (self.address, what)
                )
            reason = detail[0] if detail else exc.reason
            raise FlowError("Consul at %s refused %s: HTTP %d %s." % (self.address, what, exc.code, reason))
        except (OSError, http.client.HTTPException) as exc:
            raise FlowError("Cannot reach Consul at %s while %s: %s." % (self.address, what, exc))
        return json.loads(text) if text.strip() else None

    def services(self) -> dict[str, dict[str, Any]]:
        return self._request("GET", "/v1/agent/services", what="listing agent services") or {}

    def register(self, payload: dict[str, Any]) -> None:
        self._request("PUT", "/v1/agent/service/register", payload, what="registering %s" % payload["ID"])

    def deregister(self, service_id: str) -> None:
        self._request("PUT", "/v1/agent/service/deregister/%s" % quote(service_id, safe=""), what="deregistering %s" % service_id)
