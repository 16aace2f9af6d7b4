# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ACME helper modules (acme_lock, acme_challenge) do: their Consul connection, the issuer's lock
across proxy nodes, and the HTTP-01 tokens of an order published in Consul for every proxy node to answer."""

from __future__ import annotations

from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils import acme_challenges
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_client import ConsulClient, client_from_options
from ansible_collections.dockerflow.flow.plugins.module_utils.consul_lock import ServiceLock, release_session
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.options import default, group_spec

# The Consul options of the flow modules (docs: doc fragment dockerflow.flow.consul_connection), with the
# defaults applied here: these modules take no FLOW_* variables or docker-flow.yml.
CONSUL_SPEC = {name: dict(spec, **({"default": default(name)} if default(name) is not None else {}))
               for name, spec in group_spec("consul").items() if name not in ("lock_timeout", "lock_ttl")}
# A service name cannot hold '_' (a DNS label): this lock never meets a service's.
ACME_LOCK = "_acme"
CHALLENGE_TYPE = "http-01"
RESOURCE_PREFIX = acme_challenges.CHALLENGE_PATH.lstrip("/")  # acme_certificate's resource: the path without '/'


def consul_client(params: dict[str, Any]) -> ConsulClient:
    return client_from_options(params, params["consul_validate_certs"])


def acquire(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Take the ACME lock (waiting up to lock_timeout for another issuer) and keep it after this process."""
    client = consul_client(params)
    if check_mode:
        return {"changed": True, "session": None}
    lock = ServiceLock(client, ACME_LOCK, timeout=params["lock_timeout"], ttl=params["lock_ttl"], operation="acme")
    with lock:
        session = lock.detach()
    return {"changed": True, "session": session, "waited": round(lock.waited, 1)}


def release(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not params.get("session"):
        return {"changed": False, "session": None}
    if not check_mode:
        release_session(consul_client(params), ACME_LOCK, params["session"])
    return {"changed": True, "session": params["session"]}


def http01_challenges(challenge_data: Any) -> dict[str, str]:
    """{token: key authorization} of the http-01 challenges in community.crypto.acme_certificate's
    ``challenge_data`` ({domain: {"http-01": {"resource": ".well-known/acme-challenge/<token>",
    "resource_value": ...}}})."""
    if not isinstance(challenge_data, dict):
        raise FlowError("challenge_data is not valid: give the challenge_data that acme_certificate returned.")
    challenges = {}
    for domain, by_type in sorted(challenge_data.items()):
        challenge = by_type.get(CHALLENGE_TYPE) if isinstance(by_type, dict) else None
        resource = str(challenge.get("resource", "")) if isinstance(challenge, dict) else ""
        if not resource.startswith(RESOURCE_PREFIX):
            raise FlowError("challenge_data has no http-01 challenge for %s: the proxy answers http-01 only." % domain)
        token = resource[len(RESOURCE_PREFIX):]
        acme_challenges.challenge_key(token)  # a token that is not base64url (a '/' too) fails here
        challenges[token] = str(challenge.get("resource_value") or "")
    return challenges


def challenges(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Publish (state=present) or remove (absent) the http-01 tokens of ``challenge_data``."""
    wanted = http01_challenges(params["challenge_data"])
    client = consul_client(params)
    if check_mode:
        return {"changed": bool(wanted), "tokens": sorted(wanted)}
    if params["state"] == "present":
        done = acme_challenges.publish(client, wanted)
    else:
        done = acme_challenges.remove(client, list(wanted))
    return {"changed": bool(done), "tokens": done}
