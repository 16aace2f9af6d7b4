# -*- coding: utf-8 -*-
"""Blue-green color rules: live vs deployed color."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.colors import (
    ALL_COLORS,
    BLUE,
    BLUE_GREEN_COLORS,
    GREEN,
    PLAIN,
    next_color,
    other_color,
    serving_color,
)

maybe_color = st.sampled_from([None, "", BLUE, GREEN, PLAIN])


def test_constants():
    assert BLUE_GREEN_COLORS == ("blue", "green")
    assert set(ALL_COLORS) == {"blue", "green", "plain"}


def test_other_color():
    assert other_color(BLUE) == GREEN
    assert other_color(GREEN) == BLUE


@pytest.mark.parametrize("color", [PLAIN, None, "", "red", "Blue"])
def test_other_color_rejects_non_blue_green(color):
    with pytest.raises(ValueError, match=re.escape("no blue-green partner for color %r" % (color,))):
        other_color(color)


def test_first_release_is_blue():
    assert next_color(None, None, True) == BLUE


@pytest.mark.parametrize(
    "live, deployed, expected",
    [
        (BLUE, BLUE, GREEN),
        (GREEN, GREEN, BLUE),
        # Deployed green but never switched: blue stays live, green is replaced again.
        (BLUE, GREEN, GREEN),
        (GREEN, BLUE, BLUE),
        # No live color yet: alternate from the newest deployment.
        (None, BLUE, GREEN),
        (None, GREEN, BLUE),
        # A service that ran without blue-green before: plain is no anchor.
        (PLAIN, None, BLUE),
        (PLAIN, BLUE, GREEN),
        (PLAIN, GREEN, BLUE),
        (None, PLAIN, BLUE),
    ],
)
def test_next_color(live, deployed, expected):
    assert next_color(live, deployed, True) == expected


def test_deploying_twice_before_a_switch_replaces_the_deployed_color_again():
    live = BLUE
    first = next_color(live, BLUE, True)
    second = next_color(live, first, True)
    assert first == second == GREEN


def test_alternates_across_switches():
    live, deployed, seen = None, None, []
    for _switch in range(4):
        deployed = next_color(live, deployed, True)
        live = deployed  # the proxy switches to the new release
        seen.append(deployed)
    assert seen == [BLUE, GREEN, BLUE, GREEN]


@given(live=maybe_color, deployed=maybe_color)
def test_never_the_live_color_and_always_blue_or_green(live, deployed):
    color = next_color(live, deployed, True)
    assert color in BLUE_GREEN_COLORS
    assert color != live


@given(live=maybe_color, deployed=maybe_color, blue_green=st.sampled_from([False, None, 0]))
def test_plain_without_blue_green(live, deployed, blue_green):
    assert next_color(live, deployed, blue_green) == PLAIN


@pytest.mark.parametrize(
    "live, deployed, expected",
    [
        (BLUE, GREEN, BLUE),
        (None, GREEN, GREEN),
        ("", GREEN, GREEN),
        (PLAIN, None, PLAIN),
        (None, None, None),
    ],
)
def test_serving_color(live, deployed, expected):
    assert serving_color(live, deployed) == expected
