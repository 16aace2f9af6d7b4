# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preview route (issue 13): the non-live color answers through the proxy, on the service's own paths and
domain, only to requests that name it in a header (``preview_header``), from the addresses allowed
(``preview_allow``; none given: any). A request that names another color than the live one when there is no such
release, or none with a server up, is answered 503 "no preview release"; a request without the header, or from
an address not allowed, is served by the live color as if it had none. The preview is part of the recorded route,
so every later render (any service's switch, a sync after a restart) keeps it.
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
    header: str
    allow: tuple[str, ...] = ()

    def validated(self) -> Preview:
        """Raise FlowError for a header name that is no token of letters, digits and '-', or an allowed entry that
        is no address or network: nothing else may reach the configuration."""
        if not HEADER_NAME.match(self.header):
            raise FlowError("preview_header=%r is not a header name: use letters, digits and '-' (for example "
                            "X-Flow-Color)." % self.header)
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise FlowError("preview_allow entry %r is not an IP address or network (for example 10.0.0.0/8)."
                                % entry)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"header": self.header, "allow": list(self.allow)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Preview | None:
        return cls(header=data["header"], allow=tuple(data.get("allow") or ())) if data else None


def asked_preview(header: str | None, allow: Sequence[str] | None, recorded: dict[str, Any] | None) -> Preview | None:
    """The preview a switch asks for: what is not given (None) comes from the ``recorded`` one; an empty header
    turns it off."""
    current = Preview.from_dict(recorded)
    if header is None:
        if current is None:
            if allow:
                raise FlowError("preview_allow needs preview_header: this route has no preview.")
            return None
        header = current.header
    if not header:
        return None
    if allow is None:
        allow = current.allow if current else ()
    return Preview(header=header, allow=tuple(allow)).validated()


def preview_rule_lines(preview: Preview, index: int, conditions: list[str], service_backends: dict[str, str],
                       live: str) -> list[str]:
    """The lines that go before rule ``index``'s own ``use_backend`` (to ``live``'s backend): the other colors
    (``service_backends``: color -> backend) for requests naming them, 503 for any other name but the live one."""
    header = "req.hdr(%s)" % preview.header
    asked = ["r%d_preview" % index]
    lines = ["    acl r%d_preview %s -m found" % (index, header),
             "    acl r%d_preview_live %s -m str -i %s" % (index, header, live)]
    if preview.allow:
        lines.append("    acl r%d_preview_from src %s" % (index, " ".join(preview.allow)))
        asked.append("r%d_preview_from" % index)
    when = " ".join(conditions + asked)
    for color, backend in sorted(service_backends.items()):
        if color != live:
            lines.append("    use_backend %s if %s { %s -m str -i %s } { nbsrv(%s) gt 0 }"
                         % (backend, when, header, color, backend))
    lines.append("    use_backend %s if %s !r%d_preview_live" % (NO_PREVIEW_BACKEND, when, index))
    return lines
