# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy step: route a service's paths to a color, and make that color live.

Order of a switch, each step a precondition of the next:
1. an interrupted switch of the service is settled first (switch_intent: finished if the running
   worker serves it, else reverted);
2. the target color has passing instances in Consul;
3. the proxy runs (created with every route from Consul, or started);
4. the running worker has the target's backend (else a render that adds it, routing unchanged, is activated first),
   and its servers UP; for a swap (6), after step 5: a check of them that ran since passed (wait_for_a_fresh_check);
5. the intent (target color, configuration generation) is recorded in the state;
6. the new configuration is activated, all or nothing (ProxyNode.activate): the running worker's map takes a change
   of live colors alone (live_map, no reload); anything else passes ``haproxy -c`` and a hitless reload loads it;
7. the running worker reports the new generation, and the target's servers stay UP for as long as HAProxy's
   checks need to find a dead one (or pass one after it); if not, the previous configuration goes back;
8. only then one CAS write records the route and the new live color and clears the intent.
A failure at any step leaves the running configuration and the live color as they were; a crash
leaves the intent, which the next run settles. When the running worker already runs the route as asked, a switch
reads no other service's state and renders nothing: steps 3-4 are its map's (proxy_color_switch), 5-8 the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError, sentence
from ansible_collections.dockerflow.flow.plugins.module_utils.haproxy_config import (
    Route,
    backend_name,
    render,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.live_map import config_generation
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_canary import (
    WEIGHTS_FILE_NAME,
    Canary,
    recorded_weight,
    runtime_weight_command,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_certificates import Certificate, ProxyCertificates
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_color_switch import Activation, switch_color
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_routes import (
    DEFAULT_PROXY_NAME,
    asked_route,
    canary_weights,
    refuse_a_taken_path,
    routes_from_documents,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.server_slots import (
    DEFAULT_SERVER_SLOTS,
    overfull_colors,
    overfull_warning,
    refuse_a_switch_beyond_slots,
)
from ansible_collections.dockerflow.flow.plugins.module_utils.switch_intent import (
    FINISHED,
    REVERTED,
    PendingSwitch,
    commit,
    commit_served,
    record,
    settle,
)

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_node import ProxyNode
    from ansible_collections.dockerflow.flow.plugins.module_utils.steps.context import FlowContext

PROXY_STATES = ("present", "absent", "synced")
# A service's state document in Consul (consul_state), and what a step returns to its module.
Document = dict[str, Any]
Result = dict[str, Any]


def proxy_lock_name(proxy_name: str) -> str:
    return "proxy-%s" % proxy_name


def proxy_reconciler(flow: FlowContext, make_node: Callable[[], ProxyNode]) -> Callable[[dict], dict]:
    """A Flow.switch_reconciler for steps that reach the proxy only now and then (flow_stop_old): it
    connects (``make_node()``) only when a switch is pending, and settles it under the proxy's lock."""

    def reconcile(document: dict) -> dict:
        try:
            node = make_node()
        except FlowError as error:
            flow.note_unchecked(document, "the proxy cannot be reached: %s" % error.msg)
            return document
        with flow.lock("reconcile", name=proxy_lock_name(node.name)):
            return ProxyFlow(flow, node).reconcile(document)

    return reconcile


class ProxyFlow:
    def __init__(self, flow: FlowContext, node: ProxyNode, switch_timeout: float = 60,
                 certificates: Iterable[Certificate] = ()) -> None:
        self.flow = flow  # the service's flow context (steps.context): settings, store, registrar, lock, progress
        self.node = node
        self.switch_timeout = switch_timeout
        self.certificates = ProxyCertificates(flow.client, node, certificates)
        self.replaced: list[str] = []  # what differed in the proxy container this run replaced (ProxyNode.drift)

    def _render(self, routes: list[Route], **options: Any) -> tuple[str, str]:
        return render(routes, self.node.settings, certificates=self.certificates.digest(), **options)

    def _ensure_proxy(self, documents: Mapping[str, Document]) -> str | None:
        """The proxy runs, with the canary weights (proxy_canary) and certificates Consul records for its workers, in a
        container with these settings (a new one replaces one made with others)."""
        routes = routes_from_documents(documents, self.node.name)
        private = self.certificates.files()
        files = {WEIGHTS_FILE_NAME: weights} if (weights := canary_weights(documents, self.node.name)) else {}
        replacement = self.node.replacement()
        for done in replacement.settle(check_mode=self.flow.check_mode):
            self.flow.progress(done)
        outcome = self.node.ensure_running(lambda: self._render(routes)[0], check_mode=self.flow.check_mode, files=files,
                                           private_files=private)
        if outcome:
            self.flow.progress("proxy %s %s with %d route(s) from Consul" % (self.node.name, outcome, len(routes)))
        self.replaced = self.node.drift() if outcome != "created" else []
        if self.replaced:  # without a gap (proxy_replacement)
            replacement.apply(self.flow, self._render(routes)[0], self.replaced)
            outcome = "replaced"
        return outcome

    def _activate(self, config: str, generation: str, running: str | bool | None = False) -> bool:
        """``running``: what runs now, when this run read it under the proxy's lock (else the node reads it). True
        when only the live colors changed, in the running worker's map (live_map): no reload."""
        swapped = self.node.activate(config, generation, running=running)
        self.flow.progress("proxy configuration %s %s" % (generation, "swapped in" if swapped else "checked and activated"))
        warning = self.node.connection_warning(config)
        if warning and warning not in self.flow.warnings:
            self.flow.warnings.append(warning)
        return bool(swapped)

    def _running(self) -> tuple[str | None, set[str]]:
        """The running worker's configuration (by its generation, not haproxy.cfg; None if unknown) and backends: one
        reading a step is enough, as the caller holds the proxy's lock and no other run can reload it meanwhile."""
        if self.node.status() != "running":
            return None, set()
        return self.node.running_config(), self.node.backends()

    def run(self, state: str, service_path: Iterable[str] | None = None, service_domain: str | None = None,
            path_type: str = "prefix", color: str | None = None, preview: Mapping[str, Any] | None = None,
            https: Mapping[str, Any] | None = None) -> Result:
        """``preview``: header, cookie, allow, host and auth, as asked (proxy_preview.asked_preview); ``https``: as
        proxy_https.asked_https. Route values are checked with the route (Route.validated), before anything changes."""
        if state not in PROXY_STATES:
            raise FlowError("state=%r is not valid: use one of %s." % (state, ", ".join(PROXY_STATES)))
        flow = self.flow
        # The proxy's own lock: a sync must not render what it read before another service's switch.
        proxy_lock = flow.lock("proxy", name=proxy_lock_name(self.node.name))
        if state == "synced":
            with proxy_lock:
                return self.certificates.recorded(lambda: self._sync(self._reconcile_all(flow.store.read_all())), flow)
        with flow.lock("proxy"), proxy_lock:
            return self.certificates.recorded(lambda: self.held(
                state, (list(service_path or []), service_domain, path_type), color, preview, https), flow)

    def held(self, state: str, where: tuple[list[str], str | None, str] = ([], None, "prefix"), color: str | None = None,
             preview: Mapping[str, Any] | None = None, https: Mapping[str, Any] | None = None) -> Result:
        """State present (a switch; ``where``: paths, domain, path type) or absent, for a caller that holds the
        service's and the proxy's locks (run, or flow_canary's promotion). A switch of the color alone reads no
        other service's state (proxy_color_switch)."""
        service = self.flow.settings.service
        document = self._settled(self.flow.store.read(service)[0])
        if state == "absent":
            return self._remove(self._with_all(document), document)
        route = self.route(document, where, color, preview, https)
        instances = (document["colors"][route.color] or {}).get("instances") or 0
        refuse_a_switch_beyond_slots(route.service, route.color, instances, self.node.settings.max_servers)
        self._refuse_a_color_not_passing(document, route.color)
        switched = switch_color(self, document, route)
        return switched if switched is not None else self._switch(self._with_all(document), document, route)

    def _with_all(self, document: Document) -> dict[str, Document]:
        """Every service's state, the service's own as this run settled it."""
        return dict(self.flow.store.read_all(), **{self.flow.settings.service: document})

    def split(self, canary: Canary) -> int:
        """``canary.weight`` % of the service's requests to ``canary.color`` (flow_canary, which holds the service's
        lock), under the proxy's lock: a weight that rises is recorded before the proxy takes it, one that falls
        after. The first split of a route activates the rule that reads the weight (a hitless reload). Returns the
        canary's servers up."""
        service, backend = self.flow.settings.service, backend_name(self.flow.settings.service, canary.color)
        with self.flow.lock("proxy", name=proxy_lock_name(self.node.name)):
            documents = self.flow.store.read_all()  # the other routes cannot change: this run holds the proxy's lock
            document = self._settled(documents[service])
            rises = canary.weight > recorded_weight(document, canary.color)
            servers = self.servers_up_or_refuse(backend, document) if canary.weight else 0
            if not rises:
                self.node.runtime(runtime_weight_command(service, canary.weight))
            _before, documents[service] = self.flow.store.update(
                service, lambda doc: doc["routes"].update(canary=canary.as_dict()))
            self._ensure_proxy(documents)  # writes the weights file
            config, generation = self._render(routes_from_documents(documents, self.node.name))
            if config != self._running()[0]:
                self._activate(config, generation)
            if rises:
                self.node.runtime(runtime_weight_command(service, canary.weight))
        return servers

    # -- an interrupted switch (switch_intent) ----------------------------------------------------------
    def reconcile(self, document: Document | None) -> Document | None:
        """``document`` once an interrupted switch through this proxy is finished or reverted, by the
        generation the proxy serves. The caller holds the proxy's lock. Unsettled (noted) if the proxy
        cannot be asked."""
        intent = PendingSwitch.of(document)
        if intent is None:
            return document
        if intent.proxy != self.node.name:
            self.flow.note_unchecked(document, "it went through proxy %s, and this run reaches %s (proxy_name)"
                                     % (intent.proxy, self.node.name))
            return document
        try:
            serving = self.node.serving_generation()
        except FlowError as error:
            self.flow.note_unchecked(document, "proxy %s did not answer: %s" % (self.node.name, error.msg))
            return document
        outcome, after = settle(self.flow.store, document["service"], intent, serving, check_mode=self.flow.check_mode)
        self.flow.note_settled(document["service"], intent, outcome, serving, after)
        reverted_for_real = outcome == REVERTED and not self.flow.check_mode and self.node.status() == "running"
        if reverted_for_real and self.node.restore_running_file():
            self.flow.progress("haproxy.cfg held that switch's configuration, which never ran: the running one is back")
        return after

    def _settled(self, document: Document | None) -> Document | None:
        """The reconciled document; a switch that stays unsettled refuses this run (it would record a new one)."""
        document = self.reconcile(document)
        if PendingSwitch.of(document) is not None:
            raise FlowError(self.flow.reconciled[document["service"]]["msg"])
        return document

    def _reconcile_all(self, documents: dict[str, Document]) -> dict[str, Document]:
        """state=synced: every interrupted switch through this proxy, settled before the proxy is re-rendered."""
        for service, document in sorted(documents.items()):
            intent = PendingSwitch.of(document)
            if intent is not None and intent.proxy == self.node.name:
                documents[service] = self.reconcile(document)
        return documents

    def _settle_after_failure(self, service: str, intent: PendingSwitch) -> None:
        """After a failed switch: drop the intent if the proxy serves what it served before, commit it if the
        proxy serves the target after all (restoring failed); if the proxy or Consul does not answer, the
        intent stays for the next run."""
        try:
            outcome, _after = settle(self.flow.store, service, intent, self.node.serving_generation())
        except FlowError:
            return
        if outcome == FINISHED:
            self.flow.warnings.append("The proxy serves %s from %s after all, so the state records %s as live."
                                      % (service, intent.color, intent.color))

    # -- present / absent / synced ------------------------------------------------------------------------
    def _result(self, changed: bool, msg: str, before_config: str | None, after_config: str | None,
                what: str = "haproxy.cfg", **extra: Any) -> Result:
        result = {"changed": changed, "msg": msg, "service": self.flow.settings.service, "steps": self.flow.steps,
                  "proxy": self.node.name}
        result["diff"] = {"before": before_config or "", "after": after_config or "",
                          "before_header": "%s (running)" % what, "after_header": "%s (new)" % what}
        result.update(extra, **({"proxy_replaced": self.replaced} if self.replaced else {}))
        return result

    def _apply(self, config: str, generation: str, running: str | None) -> bool:
        if config != running and not self.flow.check_mode:
            self._activate(config, generation)
        return config != running

    def _warn_overfull(self, documents: Mapping[str, Document], skip: str | None = None) -> None:
        """Instances beyond the proxy's slots run and get no request: say so for every service it routes."""
        slots = self.node.settings.max_servers
        self.flow.warnings += [overfull_warning(service, color, count, slots) for service, color, count
                               in overfull_colors(documents, self.node.name, slots, DEFAULT_PROXY_NAME) if service != skip]

    def _sync(self, documents: Mapping[str, Document]) -> Result:
        self._warn_overfull(documents)
        outcome = self._ensure_proxy(documents)
        running = self._running()[0]
        routes = routes_from_documents(documents, self.node.name)
        config, generation = self._render(routes)
        changed = self._apply(config, generation, running) or bool(outcome)
        return self._result(changed, "Proxy %s serves the %d route(s) recorded in Consul." % (self.node.name, len(routes)),
                            running, config, proxy_outcome=outcome)

    def _remove(self, documents: Mapping[str, Document], document: Document | None) -> Result:
        service = self.flow.settings.service
        if not document or not document.get("routes"):
            return self._result(False, "%s has no route." % service, None, None)
        self._ensure_proxy(documents)
        running = self._running()[0]
        config, generation = self._render(routes_from_documents(documents, self.node.name, skip=service))
        changed = self._apply(config, generation, running)
        if not self.flow.check_mode:
            self.flow.store.update(service, lambda doc: doc.update(routes={}))
            self.flow.progress("removed the routes of %s" % service)
        return self._result(True, "Removed the routes of %s." % service, running, config, routes={}, config_changed=changed)

    # -- the switch ------------------------------------------------------------------------------------------
    def _switch(self, documents: Mapping[str, Document], document: Document, route: Route) -> Result:
        self._warn_overfull(documents, skip=route.service)
        others = routes_from_documents(documents, self.node.name, skip=route.service)
        refuse_a_taken_path(route, others, self.node.name)
        # A proxy created or started just now already serves the recorded route, but that is a change.
        proxy_outcome = self._ensure_proxy(documents)
        running, backends = self._running()
        config, generation = self._render(others + [route])
        recorded_slots = (document.get("routes") or {}).get("max_servers") or DEFAULT_SERVER_SLOTS
        if config == running and document.get("live_color") == route.color and recorded_slots == self.node.settings.max_servers:
            return self.routed(route, document, None, running, config, changed=bool(proxy_outcome))
        if self.flow.check_mode:
            return self.routed(route, document, None, running, config, would=True)
        if config == running:  # the proxy serves it already; only the state lags behind
            servers = self.servers_up_or_refuse(backend_name(route.service, route.color), document)
            self.flow.store.update(route.service, lambda doc: commit_served(doc, self.recorded_route(route)))
        else:
            previous = self._stage(route, others, document, running, backends)
            servers = self.through_intent(route, document, Activation(
                generation, self.node.swaps(config, previous), lambda: self._activate(config, generation, running=previous),
                lambda: self._restore(previous)))
        return self.routed(route, document, servers, running, config)

    def routed(self, route: Route, document: Document, servers: int | None, before: str | None, after: str | None,
               changed: bool = False, would: bool = False, what: str = "haproxy.cfg") -> Result:
        """The result of a switch (``servers``: the target's up, None when nothing was switched; ``before``, ``after``:
        ``what`` ran, and what runs now or would; ``document``: the state before)."""
        facts = dict(color=route.color, live_color=route.color, routes=route.as_dict())
        if servers is None:
            msg = ("Would route %s to %s." if would else "The proxy already routes %s to %s.") % (route.service, route.color)
            return self._result(would or changed, msg, before, after, what, **facts)
        self.flow.progress("proxy serves %s from %s (%d server(s) up)" % (route.service, route.color, servers))
        previous_live = document.get("live_color")
        was = (" (was %s)" % previous_live) if previous_live and previous_live != route.color else ""
        return self._result(True, "The proxy routes %s to %s%s." % (route.service, route.color, was), before, after,
                            what, previous_color=previous_live, servers_up=servers, **facts)

    def through_intent(self, route: Route, document: Document, activation: Activation) -> int:
        """Record the intent, activate, confirm from the running worker, then commit it (one CAS write)."""
        target = backend_name(route.service, route.color)
        servers = 0 if activation.swaps else self.servers_up_or_refuse(target, document)
        intent = PendingSwitch.new(route.color, activation.generation, self.node.name, self.recorded_route(route),
                                   document.get("live_color"))
        self.flow.store.update(route.service, lambda doc: record(doc, intent))
        self.flow.checkpoint("proxy:switch")
        try:
            self.flow.fence("activating the switch of %s to %s" % (route.service, route.color))
            if activation.swaps:  # the worker that swaps checked the target before the intent (step 4)
                self.servers_up_or_refuse(target, document, fresh=True)
            swapped = activation.activate()
            activated_at = time.monotonic()
            self.flow.checkpoint("proxy:activated")
            servers = self._confirm(route, (activated_at, swapped), document, activation.restore)
        except FlowError:
            self._settle_after_failure(route.service, intent)
            raise
        try:
            self.flow.store.update(route.service, lambda doc: commit(doc, activation.generation))
        except FlowError as error:
            raise FlowError("%s The proxy serves %s from %s; the next flow_proxy or flow_stop_old run records it (the "
                            "switch is recorded as pending)." % (error.msg, route.service, route.color))
        return servers

    def route(self, document: Document | None, where: tuple[list[str], str | None, str], color: str | None,
              preview: Mapping[str, Any] | None, https: Mapping[str, Any] | None = None) -> Route:
        """The route asked for (``where``: paths, domain, path type), completed from the recorded one, validated."""
        return asked_route(self.flow.settings.service, document, where, color, preview, https)

    def recorded_route(self, route: Route) -> dict[str, Any]:
        """The route as the state records it; deploy and scale read the slots there (they have no proxy options)."""
        return dict(route.as_dict(), proxy=self.node.name, max_servers=self.node.settings.max_servers)

    def _refuse_a_color_not_passing(self, document: Document, color: str) -> None:
        if not self._wait_passing(self.flow.settings.service, color):
            raise FlowError(
                "No instance of %s (%s) passes its Consul health check; not switching.%s"
                % (self.flow.settings.service, color, sentence(_keeps_serving(document)))
            )

    def _stage(self, route: Route, others: list[Route], document: Document, running: str | None,
               backends: set[str]) -> str | None:
        """Add the target's backend first (unless the running worker has it: ``backends``), routing unchanged, so it
        is resolved before any request goes there. Returns the configuration running afterwards."""
        if backend_name(route.service, route.color) in backends:
            return running
        previous = document.get("routes") or {}
        if previous:
            staging = others + [Route.from_dict(route.service, dict(previous, colors=list(route.colors)))]
            config, generation = self._render(staging)
        else:
            config, generation = self._render(others + [route], unrouted=(route.service,))
        if config != running:
            self._activate(config, generation, running=running)
        return config

    def _confirm(self, route: Route, activated: tuple[float, bool], document: Document, restore: Callable[[], str]) -> int:
        """The running worker serves the switch (activate returned once it reported the new generation): the
        target's servers come UP and stay UP for as long as HAProxy's checks need to find a dead one, counted from
        when it was activated (``activated``: then, and whether by a map swap), or until one passed a check that ran
        after it. If not, ``restore()`` puts back what ran."""
        (activated_at, swapped), settings, target = activated, self.node.settings, backend_name(route.service, route.color)
        seconds = settings.down_detection_seconds()
        try:
            servers = self.node.wait_servers_up(target, self.switch_timeout)
            if not self.node.hold_servers_up(target, seconds, since=activated_at, http_checks=bool(route.health_path),
                                             same_worker=swapped):
                raise FlowError(
                    "The proxy marked every server of %s DOWN within %gs of the switch (%d failed checks in a row "
                    "mark a server DOWN)" % (target, seconds, settings.check_fall))
        except FlowError as error:
            outcome = ["not switching", _keeps_serving(document), restore()]
            raise FlowError("%s: %s." % (error.msg.rstrip(". "), "; ".join(part for part in outcome if part)))
        return servers

    def _restore(self, previous: str | None) -> str:
        """Activate ``previous`` again (after a switch its worker did not confirm); says how that went."""
        if previous is None:
            return "the configuration that ran before is not known, so it was not restored"
        try:
            self._activate(previous, config_generation(previous))
        except FlowError as error:
            return "restoring the previous configuration failed: %s" % error.msg.rstrip(".")
        return "the previous configuration was restored"

    def servers_up_or_refuse(self, backend: str, document: Document, fresh: bool = False) -> int:
        try:
            if fresh:  # before a swap of the live colors' map (step 4)
                return self.node.wait_for_a_fresh_check(backend, self.node.settings.down_detection_seconds(), self.switch_timeout)
            return self.node.wait_servers_up(backend, self.switch_timeout)
        except FlowError as error:
            raise FlowError("%s Not switching.%s" % (error.msg, sentence(_keeps_serving(document))))

    def _wait_passing(self, service: str, color: str) -> int:
        timeout = 0 if self.flow.check_mode else self.switch_timeout
        return len(self.flow.registrar.watch_passing(service, bool, timeout, tag=color))


def _keeps_serving(document: Document) -> str:
    return ("live color %s keeps serving" % document["live_color"]) if document.get("live_color") else ""
