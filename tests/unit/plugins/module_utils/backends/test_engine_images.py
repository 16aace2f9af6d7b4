# -*- coding: utf-8 -*-
"""When an image is pulled: the pull policies, and Compose's schedules (daily, weekly, every_<duration>),
which pull an image the engine last tagged (a pull tags it) that long ago.

The engine is a stand-in answering ``inspect_image`` and ``pull`` (a unit test; the real engine decides
in tests/integration/test_service_keys.py, where the time stamp is the engine's own)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.dockerflow.flow.plugins.module_utils.backends.container import ContainerBackend
from ansible_collections.dockerflow.flow.plugins.module_utils.backends.engine import _tagged_age_s
from ansible_collections.dockerflow.flow.plugins.module_utils.errors import FlowError


def stamp(seconds_ago: float, fraction: str = ".123456789", zone: str = "Z") -> str:
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


class StandInEngine:
    def __init__(self, last_tag_time):
        self.last_tag_time = last_tag_time
        self.pulls = []

    def inspect_image(self, image):
        return {"Id": "sha256:abc", "Metadata": {"LastTagTime": self.last_tag_time}}

    def pull(self, image):
        self.pulls.append(image)


def backend(engine):
    container_backend = ContainerBackend.__new__(ContainerBackend)  # no engine connection: the stand-in answers
    container_backend.api = engine
    return container_backend


# The times are made in the test, not here: parameters holding the clock's second differ between two pytest-xdist
# workers that collect a second apart, and then pytest-xdist refuses to run at all ("Different tests were collected").
@pytest.mark.parametrize(
    "tag_time, refresh_after_s, pulled",
    [(lambda: stamp(10), 3600, False), (lambda: stamp(7200), 3600, True), (lambda: stamp(10, "", "+00:00"), 3600, False),
     (lambda: "0001-01-01T00:00:00Z", 86400, True), (lambda: None, 86400, True)],
    ids=["10s-ago", "2h-ago", "10s-ago-utc-offset", "zero-time", "no-tag-time"],
)
def test_refresh_pulls_an_image_last_tagged_longer_ago_than_its_age(tag_time, refresh_after_s, pulled):
    engine = StandInEngine(tag_time())
    assert backend(engine).resolve_image("app:1", "refresh", refresh_after_s=refresh_after_s) == ("sha256:abc", pulled)
    assert engine.pulls == (["app:1"] if pulled else [])


def test_the_age_of_a_tag_is_read_with_its_zone():
    # An hour ago, written as the clock two hours east of UTC reads it.
    assert 3590 < _tagged_age_s({"Metadata": {"LastTagTime": stamp(3600 - 7200, zone="+02:00")}}) < 3610
    assert _tagged_age_s({}) == float("inf")


def test_an_unknown_policy_is_one_line():
    with pytest.raises(FlowError, match=r"^pull='sometimes' is not valid: use one of always, missing, never, refresh\.$"):
        backend(StandInEngine(None)).resolve_image("app:1", "sometimes")
