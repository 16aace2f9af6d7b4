# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy step: route a service's paths to a color, and make that color live.

Order of a switch, each step a precondition of the next:
1. the target color has passing instances in Consul;
2. the proxy runs (created with every route from Consul, or started);
3. the running worker already resolved the target color's servers (its
   backend exists from an earlier render; if not, a render that adds it
   without changing any routing is activated first);
4. the new configuration passes ``haproxy -c`` and is activated by a
   hitless reload; the flow waits until the new worker runs it and sees
   the target color's servers UP;
5. only then the state records the route and the new live color.
A failure at any step leaves the running configuration and the live color as they were.
"""

from __future__ import annotations

import time

from ansible_collections.dockerflow.flow.plugins.module_utils import colors
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import (
    PATH_TYPES,
    Route,
    backend_name,
    render,
    render_generation,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import (
    DEFAULT_SERVER_SLOTS,
    overfull_colors,
    overfull_warning,
)

PROXY_STATES = ("present", "absent", "synced")
DEFAULT_PROXY_NAME = "dockerflow-proxy"


def route_colors(document):
    """Colors that get a backend: both blue-green colors once either exists, so a switch finds them resolved."""
    known = set(document.get("colors") or {})
    if known & set(colors.BLUE_GREEN_COLORS):
        known |= set(colors.BLUE_GREEN_COLORS)
    return tuple(sorted(known))


def routes_from_documents(documents, proxy_name, skip=None):
    """The routes one proxy serves: several proxies (internal, public) may share a Consul."""
    routes = []
    for service, document in sorted(documents.items()):
        if service == skip or not document.get("routes"):
            continue
        if document["routes"].get("proxy", DEFAULT_PROXY_NAME) != proxy_name:
            continue
        data = dict(document["routes"], colors=list(route_colors(document)))
        routes.append(Route.from_dict(service, data))
    return routes


def conflicting_rule(route, others):
    """The (service, path) of another route that claims the same host and path, or None."""
    for other in others:
        if (other.domain or None) != (route.domain or None) or other.path_type != route.path_type:
            continue
        for path in route.paths or (None,):
            if path in (other.paths or (None,)):
                return other.service, path
    return None


class ProxyFlow:
    def __init__(self, flow, node, switch_timeout=60):
        self.flow = flow  # the service's Flow: settings, store, registrar, lock, progress
        self.node = node
        self.switch_timeout = switch_timeout

    def _render(self, routes):
        return render(routes, self.node.settings)

    def _ensure_proxy(self, documents):
        routes = routes_from_documents(documents, self.node.name)
        initial, _generation = self._render(routes)
        outcome = self.node.ensure_running(initial, check_mode=self.flow.check_mode)
        if outcome:
            self.flow.progress("proxy %s %s with %d route(s) from Consul" % (self.node.name, outcome, len(routes)))
        if outcome != "created":
            for difference in self.node.drift():
                self.flow.warnings.append(
                    "Proxy %s %s: only a new container applies that. Replacing it drops the connections it holds: "
                    "in a quiet moment run flow_proxy state=absent, then state=synced (routes come back from Consul)."
                    % (self.node.name, difference))
        return outcome

    def _activate(self, config, generation):
        self.node.activate(config, generation)
        self.flow.progress("proxy configuration %s checked and activated" % generation)

    def run(self, state, service_path=None, service_domain=None, path_type="prefix", color=None):
        if state not in PROXY_STATES:
            raise FlowError("state=%r is not valid: use one of %s." % (state, ", ".join(PROXY_STATES)))
        if path_type not in PATH_TYPES:
            raise FlowError("path_type=%r is not valid: use one of %s." % (path_type, ", ".join(PATH_TYPES)))
        flow = self.flow
        service = flow.settings.service
        # The proxy's own lock: a sync must not render what it read before another service's switch.
        proxy_lock = flow._lock("proxy", name="proxy-%s" % self.node.name)
        if state == "synced":
            with proxy_lock:
                return self._sync(flow.store.read_all())
        with flow._lock("proxy"), proxy_lock:
            documents = flow.store.read_all()
            if state == "absent":
                return self._remove(documents, documents.get(service))
            return self._switch(documents, documents.get(service), list(service_path or []), service_domain, path_type, color)

    def _result(self, changed, msg, before_config, after_config, **extra):
        result = {"changed": changed, "msg": msg, "service": self.flow.settings.service, "steps": self.flow.steps,
                  "proxy": self.node.name}
        result["diff"] = {"before": before_config or "", "after": after_config or "",
                          "before_header": "haproxy.cfg (running)", "after_header": "haproxy.cfg (new)"}
        result.update(extra)
        return result

    def _apply(self, config, generation, running):
        if config == running:
            return False
        if not self.flow.check_mode:
            self._activate(config, generation)
        return True

    def _warn_overfull(self, documents, skip=None):
        """Instances beyond the proxy's slots run and get no request: say so for every service it routes."""
        slots = self.node.settings.max_servers
        for service, color, count in overfull_colors(documents, self.node.name, slots, DEFAULT_PROXY_NAME):
            if service != skip:
                self.flow.warnings.append(overfull_warning(service, color, count, slots))

    def _sync(self, documents):
        self._warn_overfull(documents)
        outcome = self._ensure_proxy(documents)
        running = self.node.current_config() if self.node.status() else None
        routes = routes_from_documents(documents, self.node.name)
        config, generation = self._render(routes)
        changed = self._apply(config, generation, running) or bool(outcome)
        return self._result(changed, "Proxy %s serves the %d route(s) recorded in Consul." % (self.node.name, len(routes)),
                            running, config, proxy_outcome=outcome)

    def _remove(self, documents, document):
        service = self.flow.settings.service
        if not document or not document.get("routes"):
            return self._result(False, "%s has no route." % service, None, None)
        self._ensure_proxy(documents)
        running = self.node.current_config() if self.node.status() else None
        config, generation = self._render(routes_from_documents(documents, self.node.name, skip=service))
        changed = self._apply(config, generation, running)
        if not self.flow.check_mode:
            self.flow.store.update(service, lambda doc: doc.update(routes={}))
            self.flow.progress("removed the routes of %s" % service)
        return self._result(True, "Removed the routes of %s." % service, running, config, routes={}, config_changed=changed)

    def _servers_up_or_refuse(self, backend, document):
        try:
            return self.node.wait_servers_up(backend, self.switch_timeout)
        except FlowError as error:
            live = document.get("live_color")
            raise FlowError(
                "%s Not switching.%s" % (error.msg, (" Live color %s keeps serving." % live) if live else "")
            )

    def _wait_passing(self, service, color):
        deadline = time.monotonic() + self.switch_timeout
        while True:
            passing = self.flow.registrar.passing(service, color)
            if passing or self.flow.check_mode or time.monotonic() >= deadline:
                return passing
            time.sleep(0.5)

    def _switch(self, documents, document, paths, domain, path_type, color):
        flow = self.flow
        service = flow.settings.service
        if not document or not document.get("deployed_color"):
            raise FlowError("Service %s has no release to route; deploy it first." % service)
        previous = document.get("routes") or {}
        if not paths and not domain:
            paths, domain = list(previous.get("paths") or []), previous.get("domain")
            path_type = previous.get("path_type", path_type)
        if not paths and not domain:
            raise FlowError("service_path or service_domain is required to route %s (FLOW_SERVICE_PATH)." % service)
        color = color or document["deployed_color"]
        if color not in (document.get("colors") or {}):
            released = ", ".join(sorted(document.get("colors") or {})) or "none"
            raise FlowError("Service %s has no %s release (it has: %s)." % (service, color, released))
        route = Route(
            service=service, color=color, paths=tuple(paths), path_type=path_type, domain=domain,
            colors=route_colors(document), health_path=(document["colors"][color] or {}).get("health_path"),
        ).validated()
        slots = self.node.settings.max_servers
        wanted = (document["colors"][color] or {}).get("instances") or 0
        if wanted > slots:
            raise FlowError(
                "%s (%s) runs %d instances, more than proxy_max_servers=%d (servers of one color the proxy routes "
                "to): raise proxy_max_servers, or scale it down; not switching." % (service, color, wanted, slots)
            )
        self._warn_overfull(documents, skip=service)
        others = routes_from_documents(documents, self.node.name, skip=service)
        clash = conflicting_rule(route, others)
        if clash:
            raise FlowError(
                "service_path %s%s is already routed to service %s by proxy %s; remove that route first."
                % (route.domain or "", clash[1] or "", clash[0], self.node.name)
            )
        passing = self._wait_passing(service, color)
        if not passing:
            live = document.get("live_color")
            raise FlowError(
                "No instance of %s (%s) passes its Consul health check; not switching.%s"
                % (service, color, (" Live color %s keeps serving." % live) if live else "")
            )
        # A proxy created or started just now already serves the recorded route, but that is a change.
        proxy_outcome = self._ensure_proxy(documents)
        running = self.node.current_config() if self.node.status() == "running" else None
        config, generation = render(others + [route], self.node.settings)
        recorded = previous.get("max_servers") or DEFAULT_SERVER_SLOTS
        if config == running and document.get("live_color") == color and recorded == slots:
            return self._result(bool(proxy_outcome), "The proxy already routes %s to %s." % (service, color), running, config,
                                color=color, live_color=color, routes=route.as_dict())
        if flow.check_mode:
            return self._result(True, "Would route %s to %s." % (service, color), running, config,
                                color=color, live_color=color, routes=route.as_dict())
        target = backend_name(service, color)
        if config != running:
            if target not in self.node.backends():
                # Add the target's backend first, routing unchanged, so it is resolved before any request goes there.
                if previous:
                    staging = others + [Route.from_dict(service, dict(previous, colors=list(route.colors)))]
                    staging_config, staging_generation = render(staging, self.node.settings)
                else:
                    staging_config, staging_generation = render(others + [route], self.node.settings, unrouted=(service,))
                if staging_config != running:
                    self._activate(staging_config, staging_generation)
            self._servers_up_or_refuse(target, document)
            flow.checkpoint("proxy:switch")
            self._activate(config, generation)
            try:
                servers = self.node.wait_servers_up(target, self.switch_timeout)
            except FlowError as error:
                # The new worker does not see the servers the old one saw: go back to what served.
                if running:
                    self._activate(running, render_generation(running))
                raise FlowError("%s The previous configuration was restored." % error.msg)
        else:
            servers = self._servers_up_or_refuse(target, document)
        flow.progress("proxy serves %s from %s (%d server(s) up)" % (service, color, servers))

        def mutate(doc):
            # deploy and scale read the slots here: they have no proxy options of their own.
            doc["routes"] = dict(route.as_dict(), proxy=self.node.name, max_servers=slots)
            doc["live_color"] = color

        flow.store.update(service, mutate)
        previous_live = document.get("live_color")
        was = (" (was %s)" % previous_live) if previous_live and previous_live != color else ""
        return self._result(
            True, "The proxy routes %s to %s%s." % (service, color, was),
            running, config, color=color, live_color=color, previous_color=previous_live, routes=route.as_dict(),
            servers_up=servers,
        )
