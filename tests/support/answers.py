# -*- coding: utf-8 -*-
"""What a proxy serves, asked several times: the sample app answers with its color and version."""

from __future__ import annotations


def served(get, times=6):
    """(color, version) that every one of ``times`` answers of ``get()`` -> (status, body) agrees on."""
    answers = set()
    for _request in range(times):
        status, body = get()
        assert status == 200, (status, body)
        answers.add((body["color"], body["version"]))
    assert len(answers) == 1, answers
    return answers.pop()
