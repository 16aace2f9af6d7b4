# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preview route (issue 13): the non-live color answers through the proxy, on the service's own paths and
domain, only to requests that name it in a header (``preview_header``) or a cookie (``preview_cookie``), or that
come to the preview host name (``preview_host``) on the service's paths, from the addresses allowed
(``preview_allow``; none given: any). A request that names another color than the live one (or comes to the preview
host) when there is no such release, or none with a server up, is answered 503 "no preview release"; a request that
names none, or comes from an address not allowed, is served as if the route had no preview. With ``preview_auth``
(``user:crypt-hash`` entries) a request asking for the preview must carry one of those users' credentials (HTTP
basic auth), else HAProxy answers 401; requests that do not ask are never challenged. The preview is part of the
recorded route (hashes, never passwords), so every later render (any service's switch, a sync after a restart) keeps
it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_words import config_word

HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$")
# A crypt(3) hash, which HAProxy's userlist checks with the libc's crypt(): $<id>$<fields>, as `openssl passwd -6`
# ($6$salt$hash), `mkpasswd -m sha-512` or `-m yescrypt` ($y$j9T$salt$hash) give. No spaces, quotes or '#' can
# reach the file, and a password typed instead of its hash is refused (it would never match, and be written down).
CRYPT_HASH = re.compile(r"^\$[0-9a-z]{1,8}(\$[A-Za-z0-9./=-]+){2,}$")
MAX_HASH_LENGTH = 512
NO_PREVIEW_BACKEND = "be_dockerflow_no_preview"
NO_PREVIEW_BACKEND_LINES = [
    "", "backend %s" % NO_PREVIEW_BACKEND,
    "    http-request return status 503 content-type text/plain string 'no preview release'",
]
# Reached only by a request that asks for a preview without valid credentials (the frontend checks them against
# the route's userlist): a backend, so that the first matching route decides, as for every other request.
AUTH_BACKEND = "be_dockerflow_preview_auth"
AUTH_BACKEND_LINES = ["", "backend %s" % AUTH_BACKEND, "    http-request auth realm preview"]
HIDDEN = "********"
# The preview_* options flow_proxy passes to asked_preview, by the name after "preview_".
PREVIEW_WAYS = ("header", "cookie", "allow", "host", "auth")


@dataclass(frozen=True)
class Preview:
    header: str | None = None
    cookie: str | None = None
    allow: tuple[str, ...] = ()
    host: str | None = None  # lower-cased, as the route's own host ACL compares
    auth: tuple[str, ...] = ()  # "user:crypt-hash" entries

    def validated(self) -> Preview:
        """Raise FlowError for a header or cookie name that is no token of letters, digits and '-', an allowed
        entry that is no address or network, a preview host that is no host name, or an auth entry that is no
        user name and crypt hash: nothing else may reach the configuration."""
        for option, name in (("preview_header", self.header), ("preview_cookie", self.cookie)):
            if name is not None and not HEADER_NAME.fullmatch(name):
                raise FlowError("%s=%r is not a name of letters, digits and '-' (for example X-Flow-Color)." % (option, name))
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise FlowError("preview_allow entry %r is not an IP address or network (for example 10.0.0.0/8)."
                                % entry)
        if self.host is not None and (not isinstance(self.host, str) or self.host.startswith("*.")):
            raise FlowError("preview_host=%r is not valid: use one host name like preview.example.com (no wildcard)."
                            % (self.host,))
        if self.host is not None:
            config_word(self.host, "domain", "preview_host")
        self.users()
        return self

    def users(self) -> list[tuple[str, str]]:
        """(user, hash) of each auth entry; FlowError for a bad one, naming it by its position: the message never
        holds the hash (or the password typed instead), nor a user name that may be one."""
        users: list[tuple[str, str]] = []
        for number, entry in enumerate(self.auth, 1):
            user, colon, hashed = entry.partition(":") if isinstance(entry, str) else ("", "", "")
            if not colon:
                raise FlowError("preview_auth entry %d is not user:hash (a user name, ':', then a crypt hash as "
                                "`openssl passwd -6` gives)." % number)
            if not USER_NAME.fullmatch(user):
                raise FlowError("preview_auth entry %d: the user name is not 1-64 letters, digits, '.', '_', '@' or '-'."
                                % number)
            if len(hashed) > MAX_HASH_LENGTH or not CRYPT_HASH.fullmatch(hashed):
                raise FlowError("preview_auth entry %d (user %s): the part after ':' must be a crypt hash as `openssl "
                                "passwd -6` or `mkpasswd -m sha-512` gives ($6$salt$hash), never the password itself."
                                % (number, user))
            if user in dict(users):
                raise FlowError("preview_auth entry %d: user %s is listed twice." % (number, user))
            users.append((user, hashed))
        return users

    def fetches(self) -> list[str]:
        """Where a request names the color it asks for."""
        return ["req.hdr(%s)" % self.header] * bool(self.header) + ["req.cook(%s)" % self.cookie] * bool(self.cookie)

    def as_dict(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {"header": self.header, "cookie": self.cookie, "allow": list(self.allow)}
        if self.host:  # only then: a preview recorded before preview hosts keeps its document
            recorded["host"] = self.host
        if self.auth:
            recorded["auth"] = list(self.auth)
        return recorded

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Preview | None:
        if not data:
            return None
        return cls(header=data.get("header"), cookie=data.get("cookie"), allow=tuple(data.get("allow") or ()),
                   host=data.get("host"), auth=tuple(data.get("auth") or ()))


def asked_preview(header: str | None = None, cookie: str | None = None, allow: Sequence[str] | None = None,
                  recorded: dict[str, Any] | None = None, host: str | None = None,
                  auth: Sequence[str] | None = None) -> Preview | None:
    """The preview a switch asks for: what is not given (None) comes from the ``recorded`` one; an empty name (or
    host) turns that way of asking off, and the preview with it when none is left; an empty list clears the list."""
    current = Preview.from_dict(recorded) or Preview()
    header = current.header if header is None else (header or None)
    cookie = current.cookie if cookie is None else (cookie or None)
    host = current.host if host is None else (str(host).lower() or None)
    if not header and not cookie and not host:
        for option, given in (("preview_allow", allow), ("preview_auth", auth)):
            if given:
                raise FlowError("%s needs preview_header, preview_cookie or preview_host: this route has no preview."
                                % option)
        return None
    return Preview(header=header, cookie=cookie, allow=tuple(current.allow if allow is None else allow), host=host,
                   auth=tuple(current.auth if auth is None else auth)).validated()


def userlist_name(service: str) -> str:
    """The userlist of a service's preview users; a service name is a DNS label, so this is a plain word."""
    return "preview_%s" % config_word(service, "service", "service_name")


def _allowed(preview: Preview, index: int) -> tuple[list[str], list[str]]:
    """The ACL line and the condition that limit the preview to the allowed addresses (none when any may ask)."""
    if not preview.allow:
        return [], []
    return ["    acl r%d_preview_from src %s" % (index, " ".join(preview.allow))], ["r%d_preview_from" % index]


def _challenge(preview: Preview, service: str, when: str) -> list[str]:
    """Requests that ask for the preview (``when``) without credentials of the route's users get the 401 (a
    backend, so that the first matching route decides). The check comes last: normal requests never run it."""
    if not preview.auth:
        return []
    return ["    use_backend %s if %s !{ http_auth(%s) }" % (AUTH_BACKEND, when, userlist_name(service))]


def preview_rule_lines(preview: Preview, index: int, conditions: list[str], service_backends: dict[str, str],
                       live: str, service: str = "") -> list[str]:
    """The lines that go before rule ``index``'s own ``use_backend`` (to ``live``'s backend): the other colors
    (``service_backends``: color -> backend) for requests naming them, 503 for any other name but the live one.
    An ACL declared twice matches when either line does (header or cookie). None without a header or cookie."""
    lines, asking = [], "r%d_preview" % index
    if not preview.fetches():
        return lines
    others = sorted(color for color in service_backends if color != live)
    named = {color: "r%d_preview_%s" % (index, color) for color in others}
    named[live] = "r%d_preview_live" % index
    for fetch in preview.fetches():
        lines += ["    acl %s %s -m found" % (asking, fetch)]
        lines += ["    acl %s %s -m str -i %s" % (named[color], fetch, color) for color in [live] + others]
    allowed_lines, allowed = _allowed(preview, index)
    lines += allowed_lines
    when = " ".join([*conditions, asking, *allowed])
    lines += _challenge(preview, service, "%s !%s" % (when, named[live]))  # naming the live color is no preview
    for color in others:
        backend = service_backends[color]
        lines.append("    use_backend %s if %s %s { nbsrv(%s) gt 0 }" % (backend, when, named[color], backend))
    lines.append("    use_backend %s if %s !%s" % (NO_PREVIEW_BACKEND, when, named[live]))
    return lines


def preview_host_rule_lines(preview: Preview, index: int, conditions: list[str], service_backends: dict[str, str],
                            live: str, service: str) -> list[str]:
    """Rule ``index``, on the preview host (instead of the route's own host, if any): the service's paths
    (``conditions``) on that host go to the other colors, the first with a server up, else 503. From an address
    not allowed the rule does not match, and the request goes on as if the route had no preview."""
    host = config_word(preview.host, "domain", "preview_host")
    lines = ["    acl r%d_preview_host req.hdr(host),field(1,:),lower -m str %s" % (index, host)]
    allowed_lines, allowed = _allowed(preview, index)
    lines += allowed_lines
    when = " ".join([*conditions, "r%d_preview_host" % index, *allowed])
    lines += _challenge(preview, service, when)
    for color in sorted(color for color in service_backends if color != live):
        backend = service_backends[color]
        lines.append("    use_backend %s if %s { nbsrv(%s) gt 0 }" % (backend, when, backend))
    lines.append("    use_backend %s if %s" % (NO_PREVIEW_BACKEND, when))
    return lines


def preview_sections(routes: Sequence[Any]) -> list[str]:
    """The sections the previews of ``routes`` (haproxy_config.Route) need: the 503 backend, the 401 backend and
    each service's userlist (hashes only; HAProxy checks a password with crypt())."""
    previews = [(route.service, route.preview) for route in routes if route.preview]
    lines = list(NO_PREVIEW_BACKEND_LINES) if previews else []
    if any(preview.auth for _service, preview in previews):
        lines += AUTH_BACKEND_LINES
    for service, preview in sorted(previews, key=lambda pair: pair[0]):
        if preview.auth:
            lines += ["", "userlist %s" % userlist_name(service)]
            lines += ["    user %s password %s" % user for user in preview.users()]
    return lines


def check_preview_hosts(routes: Sequence[Any]) -> None:
    """FlowError when a preview host is a route's own host (its requests would all be previews), or two routes
    claim the same paths on the same preview host (the second would never answer)."""
    domains = {route.domain.lower(): route.service for route in routes if route.domain}
    claimed: dict[tuple[Any, ...], str] = {}
    for route in routes:
        host = route.preview.host if route.preview else None
        if not host:
            continue
        if host in domains:
            raise FlowError("preview_host=%r is the service_domain of %s: use a host name of its own for the preview."
                            % (host, domains[host]))
        for path in route.paths or (None,):
            other = claimed.setdefault((host, route.path_type if path else None, path), route.service)
            if other != route.service:
                raise FlowError("preview_host=%r: %s%s is already the preview of service %s."
                                % (host, host, path or "", other))


def without_hashes(result: dict[str, Any]) -> dict[str, Any]:
    """A module result (``diff``'s configurations, the route's ``preview``) with every auth hash (and the Consul
    token of the ACME challenges, proxy_acme_consul_token) replaced by ********: Ansible's no_log hides the values
    given as preview_auth, not the recorded ones, nor a hash inside haproxy.cfg. The hashes are in Consul and the
    proxy's file; they need not be in logs as well."""
    diffs = result.get("diff") or {}
    for diff in diffs if isinstance(diffs, list) else [diffs]:  # a list when certificates changed too
        for key in ("before", "after"):
            if isinstance(diff.get(key), str):
                diff[key] = re.sub(r"(?m)^(    (?:user \S+ password|http-request set-header X-Consul-Token) )\S+$",
                                   r"\g<1>" + HIDDEN, diff[key])
    preview = (result.get("routes") or {}).get("preview")
    if isinstance(preview, dict) and preview.get("auth"):
        preview["auth"] = ["%s:%s" % (str(entry).partition(":")[0], HIDDEN) for entry in preview["auth"]]
    return result
