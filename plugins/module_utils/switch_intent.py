# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A proxy switch that survives a crash at any point: its intent is recorded before anything is activated.

A switch writes ``pending_switch`` into the service's state document (target color, the generation of
the configuration that routes to it, the proxy, the routes, when) with check-and-set, activates, confirms
from the running worker, then replaces the intent by ``live_color`` and ``routes`` in one CAS write.
A run killed in between (SIGKILL, an AWX job cancel) leaves the intent behind, and the next run that acts
on the service settles it first:

- the proxy's running worker reports the intent's generation: the proxy serves the target, so the switch
  is finished (committed);
- it reports another one (or no proxy container exists): the proxy serves what the state says, so the
  intent is dropped (reverted);
- nobody can ask the proxy (a step without proxy access, an unreachable proxy): both the live and the
  pending color may be served, and no step replaces or stops either until flow_proxy settles it.

Only the generation the worker reports counts, never haproxy.cfg: a run killed between installing the file
and the reload leaves a file that never served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

if TYPE_CHECKING:
    from ansible_collections.dockerflow.flow.plugins.module_utils.consul_state import StateStore

PENDING_KEY = "pending_switch"
FINISHED = "finished"
REVERTED = "reverted"
UNCHECKED = "unchecked"
HOW_TO_SETTLE = "Run flow_proxy (or flow_proxy state=synced) to finish the interrupted switch."


@dataclass(frozen=True)
class PendingSwitch:
    """The recorded intent of a switch that has not been committed yet."""

    color: str
    generation: str
    proxy: str
    routes: dict
    since: str
    previous_color: str | None = None

    @classmethod
    def of(cls, document: dict | None) -> PendingSwitch | None:
        data = (document or {}).get(PENDING_KEY)
        if not data:
            return None
        return cls(color=data.get("color"), generation=data.get("generation"), proxy=data.get("proxy"),
                   routes=dict(data.get("routes") or {}), since=data.get("since"),
                   previous_color=data.get("previous_color"))

    @classmethod
    def new(cls, color: str, generation: str, proxy: str, routes: dict, previous_color: str | None) -> PendingSwitch:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(color=color, generation=generation, proxy=proxy, routes=routes, since=since,
                   previous_color=previous_color)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self, service: str) -> str:
        return "the interrupted switch of %s to %s (proxy %s, since %s)" % (service, self.color, self.proxy, self.since)


# -- the CAS mutations (functions of the document alone: StateStore.update re-applies them on a conflict) --
def record(document: dict, intent: PendingSwitch) -> None:
    document[PENDING_KEY] = intent.as_dict()


def commit(document: dict, generation: str) -> None:
    """``live_color`` and ``routes`` from the intent of ``generation``, and the intent gone: one write."""
    intent = PendingSwitch.of(document)
    if intent is None or intent.generation != generation:
        return  # settled meanwhile by another run
    document["routes"] = dict(intent.routes)
    document["live_color"] = intent.color
    del document[PENDING_KEY]


def commit_served(document: dict, recorded_route: dict) -> None:
    """The state catches up with a proxy that already serves ``recorded_route`` (no intent was recorded)."""
    document["routes"] = dict(recorded_route)
    document["live_color"] = recorded_route["color"]


def drop(document: dict, generation: str) -> None:
    intent = PendingSwitch.of(document)
    if intent is not None and intent.generation == generation:
        del document[PENDING_KEY]


# -- deciding --------------------------------------------------------------------------------------------
def outcome_for(intent: PendingSwitch, serving_generation: str | None) -> str:
    """FINISHED when the proxy serves the intent's configuration, else REVERTED."""
    return FINISHED if serving_generation == intent.generation else REVERTED


def settle(store: StateStore, service: str, intent: PendingSwitch, serving_generation: str | None,
           check_mode: bool = False) -> tuple[str, dict]:
    """Finish or revert ``intent`` by what the proxy serves; returns (outcome, the document after).

    In check mode nothing is written and the document after is the prediction."""
    outcome = outcome_for(intent, serving_generation)
    mutate: Callable[[dict, str], None] = commit if outcome == FINISHED else drop
    if check_mode:
        document, _index = store.read(service)
        mutate(document, intent.generation)
        return outcome, document
    _before, after = store.update(service, lambda document: mutate(document, intent.generation))
    return outcome, after


def settled_line(service: str, intent: PendingSwitch, outcome: str, serving_generation: str | None,
                 live_color: str | None, check_mode: bool = False) -> str:
    """The progress line (and warning) that says how an interrupted switch was settled."""
    verb = {FINISHED: "finished", REVERTED: "reverted"}[outcome]
    if check_mode:
        verb = "would have " + verb
    if outcome == FINISHED:
        why = "the proxy's running worker reports its configuration (generation %s); live color %s" % (
            intent.generation, intent.color)
    else:
        served = ("generation %s" % serving_generation) if serving_generation else "no configuration of this collection"
        why = "the proxy serves %s, not the switch's %s; %s" % (
            served, intent.generation, ("live color %s keeps serving" % live_color) if live_color else "no live color")
    return "%s %s: %s" % (verb, intent.describe(service), why)


def possibly_served(document: dict) -> set:
    """Colors the proxy may serve: the live one, and the target of an unsettled switch."""
    served = {document.get("live_color")}
    intent = PendingSwitch.of(document)
    if intent is not None:
        served.add(intent.color)
    return {color for color in served if color}


def refuse_if_possibly_served(document: dict, doomed_colors: Iterable[str], action: str) -> None:
    """FlowError (one line) when an unsettled switch makes any of ``doomed_colors`` possibly served.

    ``action`` says what would happen to them ("deploy would replace")."""
    hit = sorted(set(doomed_colors) & possibly_served(document))
    if hit and PendingSwitch.of(document) is not None:
        refuse_while_unsettled(document, "%s %s" % (action, " and ".join(hit)))


def refuse_while_unsettled(document: dict, consequence: str) -> None:
    """FlowError (one line) naming the unsettled switch, the colors it leaves possibly served, and ``consequence``."""
    intent = PendingSwitch.of(document)
    if intent is None:
        return
    raise FlowError(
        "Service %s has an interrupted proxy switch to %s (proxy %s, since %s), so the proxy may serve %s: %s, "
        "refused. %s" % (document.get("service"), intent.color, intent.proxy, intent.since,
                         " or ".join(sorted(possibly_served(document))), consequence, HOW_TO_SETTLE)
    )


def unchecked_line(service: str, intent: PendingSwitch, live_color: str | None, reason: str) -> str:
    """The line (and warning) of a run that could not ask the proxy about an interrupted switch (``reason``)."""
    served = " and ".join(sorted({color for color in (live_color, intent.color) if color}))
    switch = intent.describe(service)
    return "%s%s is not settled: %s. Until it is, %s count as served and no step replaces or stops them. %s" % (
        switch[0].upper(), switch[1:], reason.rstrip("."), served, HOW_TO_SETTLE)
