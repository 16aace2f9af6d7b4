# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection to Consul: a py-consul client whose failures become one-line FlowErrors, and where
this collection keeps its keys (``KV_PREFIX``). The state documents (consul_state) and the service
locks (consul_lock) talk to Consul through it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

try:
    import consul
    import requests

    HAS_CONSUL = True
    CONSUL_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_CONSUL = False
    CONSUL_IMPORT_ERROR = str(exc)

if TYPE_CHECKING:
    from consul.base import Response

KV_PREFIX = "dockerflow"
_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


class ConsulClient:
    """A py-consul client whose failures become FlowErrors naming the Consul address."""

    def __init__(self, address: str, token: str | None = None, ca_cert: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None, validate_certs: bool = True,
                 timeout: float = 10) -> None:
        if not HAS_CONSUL:
            raise FlowError("The py-consul and requests Python packages are required: %s." % CONSUL_IMPORT_ERROR)
        self.address = address
        text = address if "//" in address else "http://" + address
        try:
            parsed = urlparse(text)
            hostname = parsed.hostname
        except ValueError:  # a bracketed host that is no IPv6 address, say
            hostname = parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not hostname or not _HOST_RE.match(hostname):
            raise FlowError("consul_address=%r is not valid: expected http(s)://HOST:PORT." % address)
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 8500)
        except ValueError:
            raise FlowError("consul_address=%r has an invalid port." % address)
        if token and not all("!" <= char <= "~" for char in token):
            # An HTTP header carries it: say what is wrong without repeating a secret.
            raise FlowError("consul_token is not valid: a Consul token is printable ASCII without spaces (its SecretID).")
        if client_cert and not client_key:
            raise FlowError("consul_client_cert is set but consul_client_key is not: both are needed.")
        for parameter, path in (("consul_ca_cert", ca_cert), ("consul_client_cert", client_cert),
                                ("consul_client_key", client_key)):
            if path and not os.path.isfile(path):
                raise FlowError("%s %s is not a file." % (parameter, path))
        verify = ca_cert if (ca_cert and validate_certs) else bool(validate_certs)
        cert = (client_cert, client_key) if client_cert else None
        self.api = consul.Consul(
            host=parsed.hostname, port=port, scheme=parsed.scheme, token=token or None, verify=verify, cert=cert,
            connections_timeout=timeout,
        )

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one API call; translate transport and ACL errors into one-line messages."""
        try:
            return function(*args, **kwargs)
        except consul.ACLPermissionDenied as exc:
            if "ACL not found" in str(exc):
                raise FlowError(
                    "Consul at %s rejected the ACL token (consul_token) while %s: ACL not found, no such token."
                    % (self.address, what)
                )
            raise FlowError(
                "Consul at %s denied %s (permission denied): the ACL token (consul_token) lacks the permission."
                % (self.address, what)
            )
        except requests.exceptions.SSLError as exc:
            raise FlowError("TLS to Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except requests.exceptions.ConnectionError:
            raise FlowError("Cannot reach Consul at %s (consul_address) while %s." % (self.address, what))
        except requests.exceptions.Timeout:
            raise FlowError("Consul at %s timed out while %s." % (self.address, what))
        except requests.exceptions.RequestException as exc:
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except OSError as exc:  # requests reads the TLS files only when it connects
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))
        except consul.ConsulException as exc:
            raise FlowError("Consul at %s failed while %s: %s." % (self.address, what, _first_line(exc)))

    def transaction(self, what: str, operations: list) -> list:
        """Apply KV ``operations`` atomically (``/v1/txn``): [] when applied, else Consul's errors
        (``{"OpIndex": i, "What": text}``) and nothing was applied.

        The request is built here because py-consul's ``Txn.put`` sends no ACL token.
        """
        return self.call(what, self.api.http.put, _transaction_errors, "/v1/txn", data=json.dumps(operations),
                         headers=self.api.prepare_headers())

    def ping(self) -> str:
        leader = self.call("asking for the cluster leader", self.api.status.leader)
        if not leader:
            raise FlowError("Consul at %s has no cluster leader; state cannot be written." % self.address)
        return leader


def _transaction_errors(response: Response) -> list:
    """The errors of a ``/v1/txn`` answer: 200 applied, 409 rolled back; anything else raises for ``call``."""
    if response.code == 200:
        return []
    if response.code == 409:
        try:
            errors = (json.loads(response.body or "null") or {}).get("Errors")
        except ValueError:
            errors = None
        return errors or [{"OpIndex": None, "What": "transaction rolled back"}]
    if response.code == 403:
        raise consul.ACLPermissionDenied(response.body)
    raise consul.ConsulException("%d %s" % (response.code, response.body))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def client_from_options(options: Mapping[str, Any], validate_certs: bool) -> ConsulClient:
    """A client from the consul options group's values (consul_address, consul_token and the TLS files);
    ``validate_certs`` as the caller resolved consul_validate_certs."""
    return ConsulClient(options["consul_address"], token=options.get("consul_token"), ca_cert=options.get("consul_ca_cert"),
                        client_cert=options.get("consul_client_cert"), client_key=options.get("consul_client_key"),
                        validate_certs=validate_certs)
