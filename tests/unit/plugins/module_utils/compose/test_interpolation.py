# -*- coding: utf-8 -*-
"""Compose's interpolation forms, one by one (the Compose spec's "Interpolation" and compose-go's template).

The basic forms (``${A}``, ``:-``, ``-``, ``:?``, ``?``, ``$$``) are also in test_compose.py; this
file adds ``:+``/``+``, nested defaults and messages, and the edge cases of the scanner.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.compose import interpolate
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


@pytest.mark.parametrize(
    "text, variables, expected",
    [
        # ${VAR:+alt}: alt when set and not empty, else the (empty) value
        ("${A:+alt}", {"A": "v"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("${A:+alt}", {}, ""),
        # ${VAR+alt}: alt when set, even empty
        ("${A+alt}", {"A": "v"}, "alt"),
        ("${A+alt}", {"A": ""}, "alt"),
        ("${A+alt}", {}, ""),
        # nested defaults and alternatives
        ("${A:-${B:-x}}", {}, "x"),
        ("${A:-${B:-x}}", {"B": "b"}, "b"),
        ("${A:-${B:-x}}", {"A": "a", "B": "b"}, "a"),
        ("${A:-${B}}", {"B": "b"}, "b"),
        ("${A:-$B}", {"B": "b"}, "b"),
        ("${A-${B-${C-deep}}}", {}, "deep"),
        ("${A:+${B}-suffix}", {"A": "1", "B": "b"}, "b-suffix"),
        ("pre-${A:-${B:-x}}-post-${C}", {"C": "c"}, "pre-x-post-c"),
        ("${A:-x}${B:-y}", {}, "xy"),
        # a default may hold characters of other operators
        ("${A:-a-b?c+d:e}", {}, "a-b?c+d:e"),
        ("${A-:-}", {}, ":-"),
        # names are case-sensitive and may hold digits and underscores after the first character
        ("${a_1}", {"a_1": "v", "A_1": "w"}, "v"),
        ("$_x1.y", {"_x1": "v"}, "v.y"),
        # a $ that starts no name or brace stays as written; a set default is not interpolated again
        ("$", {}, "$"),
        ("a $ b", {}, "a $ b"),
        ("$-1", {}, "$-1"),
        ("${A}", {"A": "${B}"}, "${B}"),
        # $$ stops interpolation, also inside a default
        ("${A:-$$B}", {"B": "b"}, "$B"),
        ("$$$A", {"A": "1"}, "$1"),
    ],
)
def test_interpolation_forms(text, variables, expected):
    assert interpolate(text, variables, "w") == expected


def test_unused_argument_is_not_interpolated():
    # The default of a set variable is never read: its required inner variable does not fail.
    assert interpolate("${A:-${B:?unused}}", {"A": "a"}, "w") == "a"
    assert interpolate("${A:+${B:?unused}}", {}, "w") == ""


@pytest.mark.parametrize(
    "text, variables, message",
    [
        ("${A?must be set}", {}, "w: variable A is required: must be set"),
        ("${A:?${HINT}}", {"HINT": "ask ops"}, "w: variable A is required: ask ops"),
        ("${A?$HINT}", {"HINT": "ask ops"}, "w: variable A is required: ask ops"),
        ("${A:-${B:?B too}}", {}, "w: variable B is required: B too"),
    ],
)
def test_required_variable_message_names_it(text, variables, message):
    with pytest.raises(FlowError) as info:
        interpolate(text, variables, "w")
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["${A", "x ${A:-${B}", "${"])
def test_unclosed_brace_is_an_error(text):
    with pytest.raises(FlowError, match=r"^w: invalid interpolation \$\{.*: no closing brace\.$"):
        interpolate(text, {}, "w")


@pytest.mark.parametrize("expression", ["${A/foo/bar}", "${A:x}", "${A#x}", "${-A}", "${ A}"])
def test_shell_forms_compose_does_not_support(expression):
    with pytest.raises(FlowError, match=r"^w: invalid interpolation %s\.$" % re.escape(expression)):
        interpolate(expression, {}, "w")


def test_keys_are_not_interpolated():
    assert interpolate({"$A": "$A"}, {"A": "1"}, "w") == {"$A": "1"}
