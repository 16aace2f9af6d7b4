# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preview route (issue 13): the non-live color answers through the proxy, on the service's own paths and
domain, only to requests that name it in a header (``preview_header``) or a cookie (``preview_cookie``), from the
addresses allowed (``preview_allow``; none given: any). A request that names another color than the live one when
there is no such release, or none with a server up, is answered 503 "no preview release"; a request that names
none, or comes from an address not allowed, is served by the live color as if it had none. The preview is part of
the recorded route, so every later render (any service's switch, a sync after a restart) keeps it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
NO_PREVIEW_BACKEND = "be_dockerflow_no_preview"
NO_PREVIEW_BACKEND_LINES = [
    "", "backend %s" % NO_PREVIEW_BACKEND,
    "    http-request return status 503 content-type text/plain string 'no preview release'",
]


@dataclass(frozen=True)
class Preview:
    header: str | None = None
    cookie: str | None = None
    allow: tuple[str, ...] = ()

    def validated(self) -> Preview:
        """Raise FlowError for a header or cookie name that is no token of letters, digits and '-', or an allowed
        entry that is no address or network: nothing else may reach the configuration."""
        for option, name in (("preview_header", self.header), ("preview_cookie", self.cookie)):
            if name is not None and not HEADER_NAME.fullmatch(name):
                raise FlowError("%s=%r is not a name of letters, digits and '-' (for example X-Flow-Color)." % (option, name))
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise FlowError("preview_allow entry %r is not an IP address or network (for example 10.0.0.0/8)."
                                % entry)
        return self

    def fetches(self) -> list[str]:
        """Where a request names the color it asks for."""
        return ["req.hdr(%s)" % self.header] * bool(self.header) + ["req.cook(%s)" % self.cookie] * bool(self.cookie)

    def as_dict(self) -> dict[str, Any]:
        return {"header": self.header, "cookie": self.cookie, "allow": list(self.allow)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Preview | None:
        if not data:
            return None
        return cls(header=data.get("header"), cookie=data.get("cookie"), allow=tuple(data.get("allow") or ()))


def asked_preview(header: str | None, cookie: str | None, allow: Sequence[str] | None,
                  recorded: dict[str, Any] | None) -> Preview | None:
    """The preview a switch asks for: what is not given (None) comes from the ``recorded`` one; an empty name turns
    that way of asking off, and the preview with it when neither is left."""
    current = Preview.from_dict(recorded) or Preview()
    header = current.header if header is None else (header or None)
    cookie = current.cookie if cookie is None else (cookie or None)
    if not header and not cookie:
        if allow:
            raise FlowError("preview_allow needs preview_header or preview_cookie: this route has no preview.")
        return None
    return Preview(header=header, cookie=cookie, allow=tuple(current.allow if allow is None else allow)).validated()


def preview_rule_lines(preview: Preview, index: int, conditions: list[str], service_backends: dict[str, str],
                       live: str) -> list[str]:
    """The lines that go before rule ``index``'s own ``use_backend`` (to ``live``'s backend): the other colors
    (``service_backends``: color -> backend) for requests naming them, 503 for any other name but the live one.
    An ACL declared twice matches when either line does (header or cookie)."""
    lines, asking = [], "r%d_preview" % index
    others = sorted(color for color in service_backends if color != live)
    named = {color: "r%d_preview_%s" % (index, color) for color in others}
    named[live] = "r%d_preview_live" % index
    for fetch in preview.fetches():
        lines += ["    acl %s %s -m found" % (asking, fetch)]
        lines += ["    acl %s %s -m str -i %s" % (named[color], fetch, color) for color in [live] + others]
    asked = [asking]
    if preview.allow:
        lines.append("    acl r%d_preview_from src %s" % (index, " ".join(preview.allow)))
        asked.append("r%d_preview_from" % index)
    when = " ".join(conditions + asked)
    for color in others:
        backend = service_backends[color]
        lines.append("    use_backend %s if %s %s { nbsrv(%s) gt 0 }" % (backend, when, named[color], backend))
    lines.append("    use_backend %s if %s !%s" % (NO_PREVIEW_BACKEND, when, named[live]))
    return lines
