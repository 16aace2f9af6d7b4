# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the HAProxy configuration of the proxy node from the routes kept in Consul.

Design, measured on HAProxy 3.0 under a 32-connection load (0 failed requests over 10 reloads):
- servers come from Consul DNS (``server-template`` on the SRV records ``_<service>._<color>.service.<domain>``),
  so scaling, a dead instance or a failed Consul check reach the proxy within the DNS hold time, with no flow
  call and no reload;
- a route change is a new file, checked with ``haproxy -c`` and activated by a master-worker reload; the server
  state is saved first and loaded by the new worker (``init-addr last``), so it starts with the servers already
  resolved;
- ``option idle-close-on-response`` lets the old worker answer the next request on an idle keep-alive connection
  instead of closing it under the client;
- a request whose server failed is retried on another server (``retry-on``, ``option redispatch``), but only GET
  and HEAD once it was sent: a server that dies after acting on a POST would otherwise have it acted on twice
  (measured: benchmarks/README.md, POST mode). Other methods are retried only when the connection failed, i.e.
  before the server saw anything.

Every value that reaches the file passes ``config_word`` (haproxy_words.py), the one place that validates and
quotes: nothing a user types can add a directive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils import acme_challenges
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_sections import (
    NO_ROUTE_BACKEND_LINES,
    defaults_lines,
    global_lines,
    no_access_log_lines,
    stats_lines,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_words import config_word
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import (
    BODY_KEY,
    LOADER_LINES,
    digest,
    generation_of,
    live_backend,
    route_key,
    trailer,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.options import OPTIONS, default
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import DICE_LINE, Canary, canary_rule_lines
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import SERVER_STATE_FILE
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_https import (
    check_https,
    https_bind_lines,
    https_rule_lines,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_preview import (
    Preview,
    check_preview_hosts,
    preview_host_rule_lines,
    preview_rule_lines,
    preview_sections,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import check_server_slots, resolvers_lines

PATH_TYPES = OPTIONS["path_type"].choices  # prefix, exact, regex
ACCESS_LOG_CHOICES = OPTIONS["proxy_access_log"].choices  # all, errors, off
_DEFAULT_CONSUL_DNS = default("consul_dns").rpartition(":")  # (host, ":", port)


@dataclass(frozen=True)
class Route:
    """Where one service is served from: its paths and/or domain, and the color they go to."""

    service: str
    color: str
    paths: tuple[str, ...] = ()
    path_type: str = "prefix"
    domain: str | None = None
    colors: tuple[str, ...] = ()  # every color that gets a backend (so a switch finds its servers resolved)
    health_path: str | None = None
    preview: Preview | None = None  # who may reach the other colors through this route (proxy_preview)
    canary: Canary | None = None  # the share of its requests another color takes (proxy_canary)
    https_redirect: bool = False  # plain HTTP requests are redirected to HTTPS
    hsts_max_age: int = 0  # seconds of the Strict-Transport-Security header on HTTPS answers (0: none)

    def validated(self) -> Route:
        """Raise FlowError for any value that may not reach the configuration."""
        config_word(self.service, "service", "service_name")
        config_word(self.color, "color", "color")
        if self.path_type not in PATH_TYPES:
            raise FlowError("path_type=%r is not valid: use one of %s." % (self.path_type, ", ".join(PATH_TYPES)))
        if not self.paths and not self.domain:
            raise FlowError("service_path or service_domain is required to route %s." % self.service)
        for path in self.paths:
            config_word(path, "regex" if self.path_type == "regex" else "path", "service_path")
        if self.domain is not None:
            config_word(self.domain, "domain", "service_domain")
        for color in self.colors:
            config_word(color, "color", "colors")
        if self.health_path is not None:
            config_word(self.health_path, "path", "health_path")
        if self.preview is not None:
            self.preview.validated()
        if self.canary is not None:
            config_word(self.canary.validated().color, "color", "color")
        check_https(self.https_redirect, self.hsts_max_age)
        return self

    @property
    def splits(self) -> bool:
        """Whether a canary takes a share of its requests (none once the canary is the routed color)."""
        return self.canary is not None and self.canary.color != self.color

    @property
    def backend_colors(self) -> list[str]:
        """The colors that get a backend: those it may be switched to, the routed one, and its canary's."""
        return sorted(set(self.colors) | {self.color} | ({self.canary.color} if self.splits else set()))

    def as_dict(self) -> dict[str, Any]:
        recorded = {
            "color": self.color,
            "paths": list(self.paths),
            "path_type": self.path_type,
            "domain": self.domain,
            "colors": list(self.colors),
            "health_path": self.health_path,
        }
        if self.preview:  # only then: a route recorded before previews keeps its document
            recorded["preview"] = self.preview.as_dict()
        if self.canary:
            recorded["canary"] = self.canary.as_dict()
        if self.https_redirect:  # only when set, as the preview: older documents stay as they were
            recorded["https_redirect"] = True
        if self.hsts_max_age:
            recorded["hsts_max_age"] = self.hsts_max_age
        return recorded

    @classmethod
    def from_dict(cls, service: str, data: dict[str, Any]) -> Route:
        return cls(
            service=service,
            color=data.get("color"),
            paths=tuple(data.get("paths") or ()),
            path_type=data.get("path_type") or "prefix",
            domain=data.get("domain"),
            colors=tuple(data.get("colors") or ()),
            health_path=data.get("health_path"),
            preview=Preview.from_dict(data.get("preview")),
            canary=Canary.from_dict(data.get("canary")),
            https_redirect=bool(data.get("https_redirect")),
            hsts_max_age=data.get("hsts_max_age") or 0,
        )


@dataclass(frozen=True)
class ProxySettings:
    """What the configuration is rendered with; the defaults of the proxy options are options.py's."""

    http_address: str = default("proxy_listen_address")
    http_port: int = default("proxy_http_port")
    https_port: int = default("proxy_https_port")  # bound only once a certificate is recorded
    stats_address: str = default("proxy_stats_address")
    stats_port: int = default("proxy_stats_port")
    admin_address: str = default("proxy_admin_address")
    admin_port: int = default("proxy_admin_port")
    consul_dns_address: str = _DEFAULT_CONSUL_DNS[0]
    consul_dns_port: int = int(_DEFAULT_CONSUL_DNS[2])
    max_servers: int = default("proxy_max_servers")  # server-template slots of one color
    access_log: str = default("proxy_access_log")  # all, errors or off
    acme_consul: str = default("proxy_acme_consul")  # HOST:PORT of Consul's HTTP API, for ACME challenges
    acme_consul_token: str | None = None
    # No option sets the checks; they are fields so that the post-switch watch (down_detection_seconds)
    # is tested to follow whatever the configuration renders (tests/unit/plugins/module_utils/test_proxy_flow.py).
    check_interval_ms: int = 1000
    # After a failed check, the next comes sooner: a dead server leaves within ~1.25 s, not 2 s, and a new
    # worker's first check of a server the running one saw fail once came ~1 s late (benchmarks/README.md).
    check_fast_interval_ms: int = 250
    check_fall: int = 2  # failed checks in a row that mark a server DOWN
    # In the configuration volume: a replacement container starts from it too (proxy_replacement).
    server_state_file: str = SERVER_STATE_FILE

    def validated(self) -> ProxySettings:
        for address, parameter in (
            (self.http_address, "proxy_listen_address"),
            (self.stats_address, "proxy_stats_address"),
            (self.admin_address, "proxy_admin_address"),
            (self.consul_dns_address, "consul_dns"),
        ):
            config_word(address, "address", parameter)
        for port, parameter in (
            (self.http_port, "proxy_http_port"),
            (self.https_port, "proxy_https_port"),
            (self.stats_port, "proxy_stats_port"),
            (self.admin_port, "proxy_admin_port"),
            (self.consul_dns_port, "consul_dns"),
        ):
            config_word(port, "port", parameter)
        config_word(self.server_state_file, "path", "server_state_file")
        check_server_slots(self.max_servers)
        acme_challenges.backend_lines(self.acme_consul, self.acme_consul_token)  # raises FlowError for a bad one
        if self.access_log not in ACCESS_LOG_CHOICES:
            raise FlowError("proxy_access_log=%r is not valid: use one of %s."
                            % (self.access_log, ", ".join(ACCESS_LOG_CHOICES)))
        return self

    def down_detection_seconds(self) -> float:
        """How long a dead server can still count as UP, at most: ``check_fall`` failed checks counted
        ``check_interval_ms`` apart (after the first, the others come sooner: ``check_fast_interval_ms``), plus one
        interval (more than the MAX_SPREAD_CHECKS_MS over which a new worker starts its checks)."""
        return (self.check_fall + 1) * self.check_interval_ms / 1000.0


def access_log_choice(value: object) -> object:
    """``value`` of proxy_access_log, with YAML 1.1's reading of an unquoted off (false) taken back to off."""
    return "off" if value is False or value in ("False", "false") else value


def backend_name(service: str, color: str) -> str:
    return "be_%s_%s" % (service, color)


def _rules(routes: Iterable[Route]) -> list[tuple[Route, str | None, bool]]:
    """One matching rule a (route, path, on the preview host?), most specific first.

    An exact host before a wildcard before no host; on the same host, rules
    with a path before the host alone; exact paths before prefixes before
    regexes; longer prefixes before shorter ones. A route with a preview host
    has a rule on that host for each of its paths too, ranked as any rule on an
    exact host: a wildcard domain or a longer path of another service does not
    take the preview host's requests from it.
    """
    rules = []
    for route in routes:
        for path in route.paths or (None,):
            rules.append((route, path, False))
            if route.preview and route.preview.host:
                rules.append((route, path, True))
    kind_rank = {"exact": 0, "prefix": 1, "regex": 2}

    def order(rule: tuple[Route, str | None, bool]) -> tuple[Any, ...]:
        route, path, on_preview_host = rule
        host = route.preview.host if on_preview_host and route.preview else route.domain
        host_rank = 2 if host is None else (1 if host.startswith("*.") else 0)
        return (host_rank, -len(host or ""), path is None, kind_rank[route.path_type], -len(path or ""),
                route.service, on_preview_host, path or "")

    return sorted(rules, key=order)


def _rule_lines(route: Route, path: str | None, index: int, on_preview_host: bool = False) -> list[str]:
    lines, conditions = [], []
    if path is not None:
        fetch = {"prefix": "path_beg", "exact": "path", "regex": "path_reg"}[route.path_type]
        kind = "regex" if route.path_type == "regex" else "path"
        lines.append("    acl r%d_path %s %s" % (index, fetch, config_word(path, kind, "service_path")))
        conditions.append("r%d_path" % index)
    backends = {color: backend_name(route.service, color) for color in route.colors or (route.color,)}
    if on_preview_host and route.preview:  # the preview host takes the place of the route's own host
        return lines + preview_host_rule_lines(route.preview, index, conditions, backends, route.color, route.service)
    if route.domain:
        domain = config_word(route.domain, "domain", "service_domain")
        if domain.startswith("*."):
            lines.append("    acl r%d_host req.hdr(host),field(1,:),lower -m end %s" % (index, domain[1:]))
        else:
            lines.append("    acl r%d_host req.hdr(host),field(1,:),lower -m str %s" % (index, domain))
        conditions.append("r%d_host" % index)
    if route.preview:
        lines += preview_rule_lines(route.preview, index, conditions, backends, route.color, route.service)
    if route.splits:
        lines += canary_rule_lines(route.service, index, conditions, backend_name(route.service, route.canary.color))
    lines.append("    use_backend %s if %s" % (live_backend(route.service), " ".join(conditions)))  # the color: live_map
    return lines


def _backend_lines(route: Route, color: str, settings: ProxySettings, tls: bool = False) -> list[str]:
    service = config_word(route.service, "service", "service_name")
    color = config_word(color, "color", "color")
    lines = ["", "backend %s" % backend_name(service, color), "    balance roundrobin"]
    lines += https_rule_lines(route.https_redirect, route.hsts_max_age) if tls else []  # never to a port not served
    if route.health_path:
        lines.append("    option httpchk GET %s" % config_word(route.health_path, "path", "health_path"))
    lines.append(
        "    server-template %s 1-%d _%s._%s.service.consul resolvers consul resolve-opts allow-dup-ip "
        "resolve-prefer ipv4 check inter %dms fastinter %dms fall %d rise 1"
        % (color[0], settings.max_servers, service, color, settings.check_interval_ms,
           settings.check_fast_interval_ms, settings.check_fall)
    )
    return lines


def render(
    routes: Iterable[Route], settings: ProxySettings, generation: str | None = None, unrouted: Collection[str] = (),
    certificates: str | None = None,
) -> tuple[str, str]:
    """The whole configuration for ``routes`` (Route objects) and its generation; deterministic for equal input.

    Services named in ``unrouted`` get their backends but no matching rule: a
    switch first lets the running worker resolve a new service's servers. ``certificates``: the recorded ones'
    digest (proxy_certificates.certificates_digest), with which the frontend serves HTTPS too (proxy_https).
    """
    settings, routes = _validated(settings, routes)
    if certificates is not None:
        config_word(certificates, "name", "certificates")
    lines = (
        global_lines(settings, certificates)
        + defaults_lines(settings)
        + resolvers_lines(settings.consul_dns_address, settings.consul_dns_port, settings.max_servers)
        + stats_lines(settings)
        + _frontend_lines(settings, [route for route in routes if route.service not in unrouted], certificates)
        + NO_ROUTE_BACKEND_LINES
        + acme_challenges.backend_lines(settings.acme_consul, settings.acme_consul_token)
        + preview_sections(routes)
        + _service_backend_lines(settings, routes, tls=certificates is not None)
    )
    body = "\n".join(lines + LOADER_LINES) + "\n"
    routed = [route for route in routes if route.service not in unrouted]
    common = shape(settings, certificates)
    entries = [(BODY_KEY, digest(body, 16))] + [(route.service, route.color) for route in routed] + [
        (route_key(route.service), route_fingerprint(route, settings, certificates, common)) for route in routed]
    generation = config_word(generation, "name", "generation") if generation else generation_of(entries)
    header = "# Generated by dockerflow.flow from the routes in Consul; edits are overwritten.\n"
    return header + body + trailer(entries, generation), generation


def shape(settings: ProxySettings, certificates: str | None = None) -> str:
    """A digest of what every route is rendered with: the settings, the certificates and the global section."""
    return digest("\n".join([repr(settings.validated()), certificates or ""] + global_lines(settings, certificates)))


def route_fingerprint(route: Route, settings: ProxySettings, certificates: str | None = None,
                      common: str | None = None) -> str:
    """A digest of the sections ``route`` (validated) renders, its rules numbered as a first route's, with ``shape``
    (``common``, when the caller has it). Two colors of a route have one fingerprint only when the configurations
    differ in the live colors' map alone: the last rule reads the color from the map, a canary rule its weight from
    canary-weights.map, and a rule that names the color (a preview's) differs."""
    on_hosts = (False, True) if route.preview and route.preview.host else (False,)
    rules = [line for path in route.paths or (None,) for on_host in on_hosts for line in _rule_lines(route, path, 0, on_host)]
    tls = certificates is not None
    backends = [line for color in route.backend_colors for line in _backend_lines(route, color, settings, tls)]
    return digest("\n".join([common or shape(settings, certificates)] + rules + backends + preview_sections([route])))


def _validated(settings: ProxySettings, routes: Iterable[Route]) -> tuple[ProxySettings, list[Route]]:
    """``settings`` and ``routes`` validated; one route a service."""
    settings = settings.validated()
    routes = [route.validated() for route in routes]
    duplicates = sorted(name for name, count in Counter(route.service for route in routes).items() if count > 1)
    if duplicates:
        raise FlowError("Service(s) %s have more than one route." % ", ".join(duplicates))
    check_preview_hosts(routes)
    return settings, routes


def _frontend_lines(settings: ProxySettings, routed: list[Route], certificates: str | None = None) -> list[str]:
    """The HTTP (and with ``certificates``, HTTPS) frontend: ACME challenges first, then one rule a (route, path) of
    ``routed``, most specific first."""
    lines = [
        "",
        "frontend http",
        "    bind %s:%d" % (settings.http_address, settings.http_port),
    ] + https_bind_lines(settings.http_address, settings.https_port, certificates) + no_access_log_lines(settings) + [
    ] + acme_challenges.frontend_rule_lines() + [
        # Retrying after the request was sent (empty-response, response-timeout) replays it: only for reads.
        "    http-request disable-l7-retry if !METH_GET",
    ] + ([DICE_LINE] if any(route.splits for route in routed) else []) + acme_challenges.frontend_backend_lines() + [
        "    default_backend be_dockerflow_none",
    ]
    for index, (route, path, on_preview_host) in enumerate(_rules(routed)):
        lines += _rule_lines(route, path, index, on_preview_host)
    return lines


def _service_backend_lines(settings: ProxySettings, routes: list[Route], tls: bool = False) -> list[str]:
    """Every service's backends, one a color it may be switched to, each with its server slots."""
    lines = []
    for route in sorted(routes, key=lambda r: r.service):
        for color in route.backend_colors:
            lines += _backend_lines(route, color, settings, tls)
    return lines
