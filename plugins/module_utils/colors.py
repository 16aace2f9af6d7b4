# -*- coding: utf-8 -*-
# Copyright: Contributors to the dockerflow.flow collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue-green color rules.

Two facts are kept apart on purpose: the *live* color is what users are
served (set by a proxy switch, or by stop-old on a service no proxy routes),
the *deployed* color is the newest release. Deploying twice before a switch
must replace the deployed color again and never the live one.
"""

from __future__ import annotations

BLUE = "blue"
GREEN = "green"
PLAIN = "plain"
BLUE_GREEN_COLORS = (BLUE, GREEN)
ALL_COLORS = (BLUE, GREEN, PLAIN)


def other_color(color: str) -> str:
    """The blue-green partner of ``color``."""
    if color == BLUE:
        return GREEN
    if color == GREEN:
        return BLUE
    raise ValueError("no blue-green partner for color %r" % (color,))


def next_color(live_color: str | None, deployed_color: str | None, blue_green: bool) -> str:
    """The color the next release runs as.

    First release: blue. Then the partner of the live color, so the live one
    is never touched; with no live color yet, the partner of the newest one.
    Without blue-green every release is ``plain``.
    """
    if not blue_green:
        return PLAIN
    anchor = live_color if live_color in BLUE_GREEN_COLORS else deployed_color
    if anchor not in BLUE_GREEN_COLORS:
        return BLUE
    return other_color(anchor)


def serving_color(live_color: str | None, deployed_color: str | None) -> str | None:
    """The color scale and stop-old act on when none is named: live, else newest."""
    return live_color or deployed_color


def live_after_deploy(color: str, live_color: str | None, routed: bool) -> str | None:
    """The live color once a release of ``color`` is recorded.

    A plain release is live at once (nothing switches to it), except on a service a proxy
    routes to another color: there only a proxy switch changes what users are served, and
    calling plain live early would let stop-old stop the color the proxy still routes to.
    """
    if color == PLAIN and not (routed and live_color not in (None, PLAIN)):
        return PLAIN
    return live_color
