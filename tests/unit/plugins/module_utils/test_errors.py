# -*- coding: utf-8 -*-
"""FlowError: the one-line message modules pass to fail_json."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def test_message_and_details_are_kept():
    error = FlowError("Instance web-1 is unhealthy.", failed_instance="web-1", logs=["a", "b"])
    assert str(error) == "Instance web-1 is unhealthy."
    assert error.msg == "Instance web-1 is unhealthy."
    assert error.details == {"failed_instance": "web-1", "logs": ["a", "b"]}
    assert isinstance(error, Exception)


def test_no_details_by_default():
    assert FlowError("x").details == {}


def test_newlines_become_spaces():
    assert str(FlowError("first line\nsecond line")) == "first line second line"


@pytest.mark.parametrize("text", ["a\r\nb", "a\rb", "a\n\nb\n"])
def test_other_line_breaks_do_not_survive(text):
    message = str(FlowError(text))
    assert "\n" not in message and "\r" not in message
    assert message.split() == ["a", "b"]


def test_non_string_message_is_converted():
    error = FlowError(ValueError("bad\nthing"))
    assert str(error) == "bad thing"


@given(st.text())
def test_message_is_always_one_line(text):
    error = FlowError(text)
    assert len(str(error).splitlines()) <= 1
    assert str(error) == error.msg
    # Nothing but line breaks is lost.
    assert str(error).split() == text.split()


def test_can_be_raised_and_caught():
    with pytest.raises(FlowError, match=r"^boom$"):
        raise FlowError("boom")
