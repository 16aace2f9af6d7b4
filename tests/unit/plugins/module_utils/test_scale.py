# -*- coding: utf-8 -*-
"""parse_scale / ScaleRequest.apply."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError
from ansible_collections.dockerflow.flow.plugins.module_utils.scale import (
    ACCEPTED_FORMS,
    ScaleRequest,
    parse_scale,
)

VALID_TEXT = re.compile(r"^[+-]?[0-9]+$")
amounts = st.integers(min_value=1, max_value=999999)
signs = st.sampled_from(["", "+", "-"])
parameters = st.sampled_from(["scale", "flow_scale", "FLOW_SCALE"])


def _digits(text):
    """The digits of a numeric text, or None when ``text`` (stripped) is not [+-]DIGITS."""
    stripped = text.strip()
    return stripped.lstrip("+-") if VALID_TEXT.match(stripped) else None


def _is_acceptable(text):
    """What the docs promise: N, +N or -N with N >= 1, at most six digits (blanks around allowed)."""
    digits = _digits(text)
    return digits is not None and len(digits) <= 6 and int(digits) >= 1


# --- property-based -------------------------------------------------------------------------


@given(sign=signs, amount=amounts)
def test_every_valid_form_parses_and_round_trips(sign, amount):
    text = sign + str(amount)
    request = parse_scale(text)
    assert request.relative == (sign != "")
    assert request.amount == (-amount if sign == "-" else amount)
    assert str(request) == text
    assert parse_scale(str(request)) == request


@given(sign=signs, amount=amounts, pad_left=st.sampled_from(["", " ", "\t"]), pad_right=st.sampled_from(["", " ", "\n"]))
def test_surrounding_blanks_are_ignored(sign, amount, pad_left, pad_right):
    assert parse_scale(pad_left + sign + str(amount) + pad_right) == parse_scale(sign + str(amount))


@given(text=st.text() | st.text(alphabet="+-0123456789 .xe\t\n"), parameter=parameters)
def test_anything_else_is_an_error_naming_parameter_and_forms(text, parameter):
    assume(text.strip() != "")  # an empty value means "not set"
    if _is_acceptable(text):
        assert isinstance(parse_scale(text, parameter), ScaleRequest)
        return
    with pytest.raises(FlowError) as info:
        parse_scale(text, parameter)
    message = str(info.value)
    assert message.startswith(parameter + "=")
    assert "\n" not in message
    digits = _digits(text)
    if digits is not None and len(digits) > 6:
        assert "at most 999999" in message
    else:
        assert ACCEPTED_FORMS in message


@given(text=st.from_regex(r"\A[+-]?[0-9]{1,6}\Z"), parameter=parameters)
def test_numeric_text_is_accepted_exactly_when_at_least_one(text, parameter):
    if int(text.lstrip("+-")) >= 1:
        request = parse_scale(text, parameter)
        assert abs(request.amount) == int(text.lstrip("+-"))
        assert request.relative == (text[0] in "+-")
    else:
        with pytest.raises(FlowError, match=re.escape(ACCEPTED_FORMS)):
            parse_scale(text, parameter)


def _refusal(request, current, maximum):
    """The one-line refusal of a count above ``maximum``, or None when apply returns a count."""
    try:
        request.apply(current, maximum=maximum)
    except FlowError as error:
        return str(error)
    return None


@given(amount=amounts, current=st.integers(min_value=0, max_value=10**6), maximum=st.none() | st.integers(1, 10**6))
def test_absolute_ignores_current_and_is_refused_above_the_maximum(amount, current, maximum):
    request = ScaleRequest(amount=amount, relative=False)
    if maximum is not None and amount > maximum:
        assert _refusal(request, current, maximum) == (
            "scale=%d would run %d instance(s) (%d run now), more than max_instances=%d." % (amount, amount, current, maximum))
    else:
        assert request.apply(current, maximum=maximum) == amount


@given(
    sign=st.sampled_from([1, -1]),
    amount=amounts,
    current=st.integers(min_value=0, max_value=10**6),
    maximum=st.none() | st.integers(1, 10**6),
)
def test_a_relative_request_moves_the_count_its_own_way_or_is_refused(sign, amount, current, maximum):
    # +1 of 5 with max_instances=3 used to give 3: a scale-up that removed two instances.
    request = ScaleRequest(amount=sign * amount, relative=True)
    expected = current + amount if sign > 0 else max(min(1, current), current - amount)
    if maximum is not None and expected > maximum:
        message = _refusal(request, current, maximum)
        assert message == "scale=%+d would run %d instance(s) (%d run now), more than max_instances=%d." % (
            sign * amount, expected, current, maximum)
        return
    result = request.apply(current, maximum=maximum)
    assert result == expected
    assert result >= current if sign > 0 else result <= current


@given(
    sign=signs,
    amount=amounts,
    current=st.integers(min_value=0, max_value=10**6),
    maximum=st.none() | st.integers(1, 10**6),
)
def test_apply_never_leaves_bounds(sign, amount, current, maximum):
    request = parse_scale(sign + str(amount))
    if _refusal(request, current, maximum) is not None:
        return
    result = request.apply(current, maximum=maximum)
    assert result >= 1 or (sign == "-" and result == current == 0), "only -N of nothing stays at nothing"
    if maximum is not None:
        assert result <= maximum


# --- explicit cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("3", ScaleRequest(3, False)),
        ("+2", ScaleRequest(2, True)),
        ("-1", ScaleRequest(-1, True)),
        (" 3 ", ScaleRequest(3, False)),
        ("007", ScaleRequest(7, False)),
        (3, ScaleRequest(3, False)),
        (-2, ScaleRequest(-2, True)),  # an int that is negative can only mean "remove"
        ("999999", ScaleRequest(999999, False)),
    ],
)
def test_valid_values(value, expected):
    assert parse_scale(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n"])
def test_empty_values_mean_not_set(value):
    assert parse_scale(value) is None


@pytest.mark.parametrize("value", ["+x", "--2", "0", "+0", "-0", "1.5", "3x", "x3", "+ 2", "three", "1e3", "0x10", "٣", 0, 1.5])
def test_invalid_values_name_parameter_and_forms(value):
    with pytest.raises(FlowError) as info:
        parse_scale(value, "scale")
    assert str(info.value) == "scale=%r is not valid: expected %s." % (value, ACCEPTED_FORMS)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected(value):
    # YAML turns an unquoted yes/no into a bool; it must not become 1 or 0.
    with pytest.raises(FlowError, match=r"^scale=%r is not valid" % value):
        parse_scale(value)


@pytest.mark.parametrize("value", ["9999999", "+1000000", 1000000])
def test_huge_values_are_rejected(value):
    with pytest.raises(FlowError, match=r"at most 999999 instances"):
        parse_scale(value, "scale")


def test_custom_parameter_name_is_used():
    with pytest.raises(FlowError, match=r"^FLOW_SCALE='x' is not valid"):
        parse_scale("x", "FLOW_SCALE")


def test_str_of_requests():
    assert str(ScaleRequest(3, False)) == "3"
    assert str(ScaleRequest(3, True)) == "+3"
    assert str(ScaleRequest(-3, True)) == "-3"


@pytest.mark.parametrize(
    "value, current, maximum, expected",
    [
        ("3", 10, None, 3),
        ("3", 0, 3, 3),
        ("+2", 1, None, 3),
        ("+2", 1, 3, 3),
        ("-1", 3, None, 2),
        ("-5", 3, None, 1),  # never below one instance
        ("-1", 1, None, 1),
        ("+1", 0, None, 1),
        ("-1", 0, None, 0),  # nothing runs: -1 does not start one
        ("-2", 5, 3, 3),
    ],
)
def test_apply_examples(value, current, maximum, expected):
    assert parse_scale(value).apply(current, maximum=maximum) == expected


@pytest.mark.parametrize(
    "value, current, maximum, message",
    [
        ("+1", 5, 3, "scale=+1 would run 6 instance(s) (5 run now), more than max_instances=3."),
        ("-1", 5, 3, "scale=-1 would run 4 instance(s) (5 run now), more than max_instances=3."),
        ("+2", 1, 2, "scale=+2 would run 3 instance(s) (1 run now), more than max_instances=2."),
        ("3", 0, 2, "scale=3 would run 3 instance(s) (0 run now), more than max_instances=2."),
    ],
)
def test_a_count_above_max_instances_is_refused_never_cut_down(value, current, maximum, message):
    with pytest.raises(FlowError) as caught:
        parse_scale(value).apply(current, maximum=maximum)
    assert str(caught.value) == message


def test_apply_custom_minimum():
    assert ScaleRequest(-10, True).apply(5, minimum=2) == 2
