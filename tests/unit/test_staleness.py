"""Staleness functions against hand-computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.core.staleness import Constant, Hinge, Polynomial, staleness_function


def test_constant_is_one_at_any_staleness() -> None:
    assert [Constant()(s) for s in (0, 1, 100)] == [1.0, 1.0, 1.0]


def test_polynomial_matches_hand_computed_values() -> None:
    f = Polynomial(a=0.5)
    assert f(0) == 1.0
    assert f(3) == pytest.approx(0.5)  # (1 + 3)^-0.5
    assert f(8) == pytest.approx(1 / 3)  # (1 + 8)^-0.5


def test_hinge_matches_hand_computed_values() -> None:
    f = Hinge(a=10, b=4)
    assert f(4) == 1.0
    assert f(5) == pytest.approx(1 / 11)  # 1 / (10 * 1 + 1)
    assert f(6) == pytest.approx(1 / 21)


@given(
    st.sampled_from(["constant", "polynomial", "hinge"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_every_staleness_function_is_in_unit_interval_and_non_increasing(
    name: str, s1: int, s2: int
) -> None:
    f = staleness_function(name)  # type: ignore[arg-type]
    lo, hi = sorted((s1, s2))
    assert 0.0 < f(hi) <= f(lo) <= 1.0
    assert math.isfinite(f(hi))


def test_defaults_are_the_papers() -> None:
    assert staleness_function("polynomial") == Polynomial(0.5)
    assert staleness_function("hinge") == Hinge(10.0, 4)
