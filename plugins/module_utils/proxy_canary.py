# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary weights (issue 13): a share of a service's requests goes to its canary color, set at run time.

How the proxy splits, with no reload once the canary's rule is in the configuration:
- the frontend throws one die a request, ``rand(100)`` (0-99), into ``txn.flow_dice``;
- a route with a canary has one more rule before its own: the canary's backend when the service's weight
  minus the die is above 0 (so a weight of N takes N % of the requests; 0 takes none, 100 all), and the
  canary has a server up (else the live color answers, as without a canary);
- the weight is the service's entry in the map file WEIGHTS_FILE. HAProxy's runtime API changes the entry in
  the running worker at once (``del map``/``add map``); the file, rewritten from Consul beside it, is what a
  reloaded or restarted worker reads. Not ``opt@``: HAProxy 3.0 gives each ``opt@`` reference (one a path of a
  route) a map of its own, and the runtime API changed the first only; the reload script makes sure the file exists.
The canary is part of the route recorded in Consul (``routes.canary``: color, weight), the one truth both
follow: every render of any service, and a proxy synced after a restart, come back with the same split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_files import WEIGHTS_FILE

WEIGHTS_FILE_NAME = WEIGHTS_FILE.rpartition("/")[2]
DICE_LINE = "    http-request set-var(txn.flow_dice) rand(100)"


@dataclass(frozen=True)
class Canary:
    color: str
    weight: int  # percent of the route's requests, 0-100

    def validated(self) -> Canary:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or not 0 <= self.weight <= 100:
            raise FlowError("canary_weight=%r is not valid: use a whole percentage from 0 to 100." % (self.weight,))
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"color": self.color, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Canary | None:
        if not data:
            return None
        return cls(color=data["color"], weight=int(data.get("weight") or 0))


def recorded_canary(document: Mapping[str, Any]) -> Canary | None:
    """The canary a service's state document records with its route, if any."""
    return Canary.from_dict((document.get("routes") or {}).get("canary"))


def recorded_weight(document: Mapping[str, Any], color: str) -> int:
    """The weight the state records for ``color`` as the canary (0 when another color, or none, is the canary)."""
    canary = recorded_canary(document)
    return canary.weight if canary and canary.color == color else 0


def canary_rule_lines(service: str, index: int, conditions: list[str], backend: str) -> list[str]:
    """The rule that goes before rule ``index``'s own ``use_backend``: ``backend`` (the canary's) for the share of
    the requests the service's weight in WEIGHTS_FILE says, while it has a server up. ``service`` and ``backend``
    are validated words."""
    return [
        "    acl r%d_canary str(%s),map_str_int(%s,0),sub(txn.flow_dice) gt 0" % (index, service, WEIGHTS_FILE),
        "    use_backend %s if %s r%d_canary { nbsrv(%s) gt 0 }" % (backend, " ".join(conditions), index, backend),
    ]


def weights_file_text(canaries: Iterable[tuple[str, Canary]]) -> str:
    """WEIGHTS_FILE for ``canaries`` (service, canary): a line a service."""
    return "".join("%s %d\n" % (service, canary.weight) for service, canary in sorted(canaries, key=lambda c: c[0]))


def runtime_weight_command(service: str, weight: int) -> str:
    """One runtime API line that sets ``service``'s weight in the running worker (the entry may be missing: a
    worker that loaded the file before the service had a canary). Between the two commands the weight is 0."""
    return "del map %s %s;add map %s %s %d" % (WEIGHTS_FILE, service, WEIGHTS_FILE, service, weight)


def refuse_a_serving_canary(document: Mapping[str, Any], doomed_colors: Iterable[str], action: str) -> None:
    """FlowError (one line) when one of ``doomed_colors`` takes a share of the requests as a canary. ``action``
    says what would happen to it ("deploy would replace")."""
    canary = recorded_canary(document)
    if canary and canary.weight and canary.color in set(doomed_colors):
        raise FlowError("%s takes %d %% of the requests of %s as a canary, and %s it: refused. Promote it or end it "
                        "(flow_canary with canary_weight=0) first."
                        % (canary.color, canary.weight, document.get("service"), action))
