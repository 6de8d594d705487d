"""Failpoints: parsed strictly, inert unless armed, crash on exactly the N-th arrival."""

from __future__ import annotations

import pytest

from aggregator.settings import AggregatorSettings
from aggregator.shell.failpoints import Failpoint, Failpoints, parse_failpoint


def test_a_failpoint_spec_names_a_point_and_a_count() -> None:
    assert parse_failpoint("after-publish:3") == Failpoint("after-publish", 3)


@pytest.mark.parametrize(
    "spec", ["after-publish", "nowhere:1", "after-publish:0", "after-publish:x"]
)
def test_a_bad_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_failpoint(spec)


def test_the_crash_happens_on_the_nth_arrival_at_the_armed_point_only() -> None:
    crashes: list[int] = []
    points = Failpoints("after-checkpoint:2", crash=lambda: crashes.append(1))

    points.reached("after-publish")
    points.reached("after-checkpoint")
    assert crashes == []
    points.reached("after-checkpoint")
    assert crashes == [1]
    points.reached("after-checkpoint")
    assert crashes == [1]


def test_unarmed_failpoints_never_crash() -> None:
    points = Failpoints(None, crash=lambda: pytest.fail("crashed"))

    for point in ("before-checkpoint", "after-checkpoint", "after-publish"):
        points.reached(point)


def test_the_setting_refuses_a_bad_failpoint_and_a_window_shorter_than_the_queue() -> None:
    with pytest.raises(ValueError):
        AggregatorSettings(failpoint="after-lunch:1")
    with pytest.raises(ValueError, match="applied_window"):
        AggregatorSettings(applied_window=10, results_max_length=100)
    assert AggregatorSettings(failpoint="before-checkpoint:7").failpoint == "before-checkpoint:7"
