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

    def apply(self, current, minimum=1, maximum=None):
        """Return the new instance count for ``current`` instances.

        The result never drops below ``minimum`` (a release with no instance
        serves nothing); with ``maximum`` set, it never exceeds it.
        """
        wanted = current + self.amount if self.relative else self.amount
        wanted = max(minimum, wanted)
        if maximum is not None:
            wanted = min(maximum, wanted)
        return wanted

    def __str__(self):
        if self.relative:
            return "%+d" % self.amount
        return str(self.amount)


def parse_scale(value, parameter="scale"):
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


def check_max_instances(value, parameter="max_instances"):
    """Validate the optional upper bound; None means unbounded."""
    if value is None:
        return None
    try:
        bound = int(value)
    except (TypeError, ValueError):
        raise FlowError("%s=%r is not valid: expected a whole number >= 1." % (parameter, value))
    if bound < 1 or isinstance(value, bool):
        raise FlowError("%s=%r is not valid: expected a whole number >= 1." % (parameter, value))
    return bound
