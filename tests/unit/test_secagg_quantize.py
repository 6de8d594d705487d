"""Fixed point in Z_{2^32}: the scale rule, stochastic rounding, and wrap-free decoding of sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.quantize import (
    MAX_SUM,
    FixedPoint,
    centred,
    clip_l2,
    decode_error_bound,
    decode_sum,
    encode,
    fixed_point_for,
    quantize,
)

HALF_WORD = np.uint32(1 << 31)


def test_the_scale_leaves_one_unit_of_rounding_room_below_the_per_summand_limit() -> None:
    fixed = fixed_point_for(2.0, 3)

    assert fixed.limit == (2**31 - 1) // 3 == 715827882
    assert fixed.scale == (715827882 - 1) / 2.0


def test_a_noise_margin_is_taken_off_the_signal_not_off_the_limit() -> None:
    fixed = fixed_point_for(1.0, 1, noise_margin=1000)

    assert fixed.limit == 2**31 - 1
    assert fixed.scale == 2**31 - 1 - 1 - 1000


def test_too_large_a_noise_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="noise margin"):
        fixed_point_for(1.0, 2**30, noise_margin=1)


def test_stochastic_rounding_goes_up_exactly_when_the_word_is_below_the_fraction() -> None:
    fixed = FixedPoint(value_bound=4.0, summands=2, scale=2.0, limit=10)
    values = np.array([1.25, 1.25, -1.25, -1.25, 0.5])  # scaled: 2.5, 2.5, -2.5, -2.5, 1.0
    words = np.array([HALF_WORD - 1, HALF_WORD, HALF_WORD - 1, HALF_WORD, 0], dtype=np.uint32)

    ints = quantize(values, fixed, words)

    assert ints.tolist() == [3, 2, -2, -3, 1]


def test_values_beyond_the_bound_are_clamped_before_rounding() -> None:
    fixed = FixedPoint(value_bound=1.0, summands=2, scale=3.0, limit=4)

    ints = quantize(np.array([100.0, -100.0]), fixed, np.zeros(2, dtype=np.uint32))

    assert ints.tolist() == [3, -3]


def test_negative_integers_encode_as_their_twos_complement_and_decode_back() -> None:
    fixed = FixedPoint(value_bound=4.0, summands=2, scale=2.0, limit=10)

    words = encode(np.array([-3, 5, 0], dtype=np.int64))

    assert words.tolist() == [2**32 - 3, 5, 0]
    assert decode_sum(words, fixed).tolist() == [-1.5, 2.5, 0.0]


def test_clip_l2_scales_a_long_vector_to_the_bound_and_leaves_a_short_one() -> None:
    assert np.allclose(clip_l2([3.0, 4.0], 1.0), [0.6, 0.8])
    assert clip_l2([0.3, 0.4], 1.0).tolist() == [0.3, 0.4]


def test_clip_l2_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        clip_l2([1.0, float("nan")], 1.0)


@settings(max_examples=200, deadline=None)
@given(summands=st.integers(1, 5000), bound=st.floats(1e-6, 1e6), sign=st.sampled_from([-1.0, 1.0]))
def test_summands_at_the_bound_never_wrap(summands: int, bound: float, sign: float) -> None:
    fixed = fixed_point_for(bound, summands)
    # Worst case: every summand at the bound, every rounding up (word 0 rounds any fraction up).
    ints = quantize(np.full(3, sign * bound), fixed, np.zeros(3, dtype=np.uint32))
    total = np.zeros(3, dtype=np.uint32)
    for _ in range(summands):
        total += encode(ints)

    exact = int(ints[0]) * summands

    assert abs(exact) <= MAX_SUM
    assert centred(total).tolist() == [exact] * 3


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    summands=st.integers(1, 60),
    bound=st.floats(1e-3, 1e3),
)
def test_a_decoded_sum_is_within_the_stated_error_of_the_exact_sum(
    seed: int, summands: int, bound: float
) -> None:
    rng = np.random.default_rng(seed)
    fixed = fixed_point_for(bound, summands)
    values = rng.uniform(-bound, bound, size=(summands, 50))
    total = np.zeros(50, dtype=np.uint32)
    for row in values:
        words = rng.integers(0, 2**32, size=50, dtype=np.uint32)
        total += encode(quantize(row, fixed, words))

    error = np.abs(decode_sum(total, fixed) - values.sum(axis=0)).max()

    assert error <= decode_error_bound(fixed, summands) * (1 + 1e-9)


def test_stochastic_rounding_is_unbiased() -> None:
    rng = np.random.default_rng(7)
    fixed = FixedPoint(value_bound=1.0, summands=1, scale=1.0, limit=2)
    n = 200_000
    words = rng.integers(0, 2**32, size=n, dtype=np.uint32)

    ints = quantize(np.full(n, 0.3), fixed, words)

    # Bernoulli(0.3): the mean's standard error is sqrt(0.21 / n) ~ 0.001; allow 5 of them.
    assert abs(ints.mean() - 0.3) < 0.005
