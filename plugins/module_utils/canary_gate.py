# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gate of a canary promotion (issue 13): its schedule, and the verdict on a step from HAProxy's own counters.

A step's figures are the differences of the backends' counters (``show stat``) between the step's start and now:
answers, 5xx answers, and HAProxy's average response time (its last 1,024 requests). The canary breaches when its
5xx ratio (minus the live color's, with ``against_live``) is above ``max_error_ratio``, or its response time (minus
the live color's) above ``max_response_ms``. During the dwell only a canary that answered ``min_requests`` can
breach, so that one early error does not read as a high ratio; at the step's end it is judged on what it answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.proxy_answers import server_rows

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
ANSWER_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
ON_FAILURE = ("keep", "stop")


def duration_seconds(value: Any, parameter: str) -> float:
    """``30``, ``"30s"``, ``"500ms"`` or ``"2m"`` in seconds; FlowError unless it is a duration above 0."""
    match = DURATION.match(str(value)) if not isinstance(value, bool) else None
    seconds = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2) or "s"] if match else 0
    if seconds <= 0:
        raise FlowError("%s=%r is not valid: use a duration above 0, such as 30s, 500ms or 2m." % (parameter, value))
    return seconds


def ratio(value: Any, parameter: str) -> float:
    """``0.05`` or ``"5%"`` as 0.05; FlowError unless it is a ratio from 0 to 1."""
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or not 0 <= number <= 1:
        raise FlowError("%s=%r is not valid: use a ratio from 0 to 1, such as 0.01 or 1%%." % (parameter, value))
    return number


def weights(values: Any) -> tuple[int, ...]:
    """The schedule's weights: whole percentages from 1 to 100, each above the one before."""
    try:
        steps = tuple(int(str(value)) for value in values or ())
    except ValueError:
        steps = ()
    if not steps or any(not 1 <= step <= 100 for step in steps) or list(steps) != sorted(set(steps)):
        raise FlowError("canary_steps=%r is not valid: use increasing whole percentages from 1 to 100, such as "
                        "[5, 25, 50, 100]." % (list(values or []),))
    return steps


@dataclass(frozen=True)
class Schedule:
    steps: tuple[int, ...]
    dwell: float  # seconds a step lasts
    max_error_ratio: float
    max_response_ms: float | None = None
    against_live: bool = False
    min_requests: int = 20
    on_failure: str = "keep"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Schedule:
        """The schedule the module's parameters ask for; FlowError (one line, naming the parameter) if invalid."""
        response = params.get("canary_max_response_time")
        if params.get("canary_min_requests") is not None and params["canary_min_requests"] < 0:
            raise FlowError("canary_min_requests=%r is not valid: use 0 or more." % params["canary_min_requests"])
        if params.get("canary_on_failure", "keep") not in ON_FAILURE:
            raise FlowError("canary_on_failure=%r is not valid: use one of %s."
                            % (params["canary_on_failure"], ", ".join(ON_FAILURE)))
        return cls(
            steps=weights(params["canary_steps"]),
            dwell=duration_seconds(params["canary_dwell"], "canary_dwell"),
            max_error_ratio=ratio(params["canary_max_error_ratio"], "canary_max_error_ratio"),
            max_response_ms=None if response is None else 1000 * duration_seconds(response, "canary_max_response_time"),
            against_live=bool(params.get("canary_against_live")),
            min_requests=params.get("canary_min_requests", 20),
            on_failure=params.get("canary_on_failure", "keep"),
        )


@dataclass(frozen=True)
class Counters:
    """A backend's counters at one moment, in one worker (its PID: a reload starts a worker that counts from 0)."""

    answers: int = 0
    errors: int = 0  # 5xx answers
    response_ms: int = 0  # average over its last 1,024 requests
    worker: str = ""

    @classmethod
    def of(cls, answer: str, backend: str) -> Counters:
        """From the runtime API's answer to ``show info`` (the worker) followed by ``show stat`` lines."""
        pid = re.search(r"^Pid: (\d+)$", answer, re.MULTILINE)
        worker = pid.group(1) if pid else ""
        stat_csv = answer[answer.find("# pxname"):] if "# pxname" in answer else ""
        rows = server_rows(stat_csv, backend, ANSWER_COLUMNS + ("rtime",), kinds=("BACKEND",))
        if not rows:
            return cls(worker=worker)
        row = rows[0]
        return cls(answers=sum(int(row[column] or 0) for column in ANSWER_COLUMNS), errors=int(row["hrsp_5xx"] or 0),
                   response_ms=int(row["rtime"] or 0), worker=worker)

    def since(self, start: Counters) -> Counters:
        """What happened between ``start`` and this: the answers counted since (all of this worker's when ``start``
        was another's), the response time as it is now."""
        if start.worker != self.worker:
            start = Counters()
        return Counters(self.answers - start.answers, self.errors - start.errors, self.response_ms, self.worker)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.answers if self.answers else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.answers, "errors_5xx": self.errors, "error_ratio": round(self.error_ratio, 4),
                "response_time_ms": self.response_ms}


def breach(canary: Counters, live: Counters, schedule: Schedule, step_over: bool) -> str | None:
    """Why the canary fails its step (its counters and the live color's since the step began), or None. Before
    ``step_over`` only a canary with ``min_requests`` answers is judged."""
    if not canary.answers or (not step_over and canary.answers < schedule.min_requests):
        return None
    baseline = live if schedule.against_live else Counters()
    than = (" (the live color's: %.3f, %d ms)" % (live.error_ratio, live.response_ms)) if schedule.against_live else ""
    if canary.error_ratio - baseline.error_ratio > schedule.max_error_ratio:
        return ("5xx ratio %.3f (%d of %d requests)%s is above canary_max_error_ratio=%g"
                % (canary.error_ratio, canary.errors, canary.answers, than, schedule.max_error_ratio))
    if schedule.max_response_ms is not None and canary.response_ms - baseline.response_ms > schedule.max_response_ms:
        return ("average response time %d ms%s is above canary_max_response_time=%gms"
                % (canary.response_ms, than, schedule.max_response_ms))
    return None
