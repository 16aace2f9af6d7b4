# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Absolute (``3``) and relative (``+2``, ``-1``) instance counts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError

ACCEPTED_FORMS = "a whole number N >= 1 (absolute), +N or -N with N >= 1 (relative)"
_SCALE_RE = re.compile(r"^([+-]?)([0-9]+)$")


@dataclass(frozen=True)
class ScaleRequest:
    """A parsed scale value: ``relative`` adds ``amount`` (signed) to the current count."""

    amount: int
    relative: bool

    def apply(self, current: int, minimum: int = 1, maximum: int | None = None) -> int:
        """Return the new instance count for ``current`` instances.

        A relative request moves the count only its own way: ``-N`` stops at ``minimum`` (a
        release with no instance serves nothing) and never adds; ``+N`` never removes. A count
        above ``maximum`` is refused (FlowError naming scale, max_instances and the counts),
        never cut down to it: ``+1`` of 5 with ``maximum=3`` would otherwise remove two.
        """
        if self.relative:
            wanted = current + self.amount
            if self.amount < 0:
                wanted = max(min(minimum, current), wanted)
        else:
            wanted = max(minimum, self.amount)
        if maximum is not None and wanted > maximum:
            raise FlowError(
                "scale=%s would run %d instance(s) (%d run now), more than max_instances=%d."
                % (self, wanted, current, maximum)
            )
        return wanted

    def __str__(self) -> str:
        if self.relative:
            return "%+d" % self.amount
        return str(self.amount)


def parse_scale(value: str | int | None, parameter: str = "scale") -> ScaleRequest | None:
    """Parse ``value`` (str or int) into a ScaleRequest, or None for an empty value.

    Anything but ``N``, ``+N`` or ``-N`` raises FlowError naming ``parameter``
    and the accepted forms: no guessing (``--2``, ``+x``, ``1.5``, ``0``).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise FlowError("%s=%r is not valid: expected %s." % (parameter, value, ACCEPTED_FORMS))
    if isinstance(value, int):
        text = str(value)
    else:
        text = str(value).strip()
        if text == "":
            return None
    match = _SCALE_RE.match(text)
    if not match:
        raise FlowError("%s=%r is not valid: expected %s." % (parameter, value, ACCEPTED_FORMS))
    sign, digits = match.groups()
    if len(digits) > 6:
        raise FlowError("%s=%r is not valid: at most 999999 instances." % (parameter, value))
    amount = int(digits)
    if amount == 0:
        raise FlowError("%s=%r is not valid: expected %s." % (parameter, value, ACCEPTED_FORMS))
    if sign == "":
        return ScaleRequest(amount=amount, relative=False)
    return ScaleRequest(amount=amount if sign == "+" else -amount, relative=True)
