"""Clipping, Gaussian noise, adaptive clipping and DP-SGD, each on its own."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from privacy.accountant import GaussianEvent, combined_noise_multiplier
from privacy.adaptive import AdaptiveClip, update_noise_multiplier
from privacy.clipping import clip_update, clipped_sum, per_example_norms
from privacy.dpsgd import DpSgdParams, dp_sgd, sampling_rate, steps_for
from privacy.noise import add_gaussian_noise, entropy_generator, generator_state, restore_generator
from training.weights import l2_norm

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.integers(1, 40), elements=finite),
    arrays(np.float32, (3, 2), elements=finite),
    st.floats(1e-3, 1e3),
)
def test_a_clipped_update_never_exceeds_the_clip_norm(
    w: np.ndarray, b: np.ndarray, clip: float
) -> None:
    result = clip_update({"w": w, "b": b}, clip)

    assert l2_norm(result.arrays) <= clip
    assert result.scaled == (l2_norm({"w": w, "b": b}) > clip)


def test_clipping_keeps_direction_and_leaves_small_updates_alone() -> None:
    big = {"w": np.array([3.0, 4.0], np.float32)}
    small = {"w": np.array([0.3, 0.4], np.float32)}

    clipped, untouched = clip_update(big, 1.0), clip_update(small, 1.0)

    np.testing.assert_allclose(clipped.arrays["w"], [0.6, 0.8], rtol=1e-5)
    np.testing.assert_array_equal(untouched.arrays["w"], small["w"])
    assert clipped.norm == pytest.approx(5.0) and not untouched.scaled


def test_per_example_clipping_bounds_each_example_before_summing() -> None:
    grads = {"w": np.array([[3.0, 4.0], [0.3, 0.4]]), "b": np.array([[0.0], [0.0]])}

    total = clipped_sum(grads, 1.0)

    np.testing.assert_allclose(per_example_norms(grads), [5.0, 0.5])
    np.testing.assert_allclose(total["w"], [0.9, 1.2])


def test_gaussian_noise_has_the_configured_standard_deviation() -> None:
    x = {"w": np.zeros((200, 500), np.float32)}

    add_gaussian_noise(x, 0.7, np.random.default_rng(1))

    # 100,000 draws: the sample std is within 1% of sigma with overwhelming probability.
    assert np.std(x["w"]) == pytest.approx(0.7, rel=0.01)
    assert abs(np.mean(x["w"])) < 0.01


def test_a_restored_generator_continues_the_same_stream() -> None:
    rng = entropy_generator(7)
    rng.standard_normal(10)
    saved = generator_state(rng)
    expected = rng.standard_normal(5)
    other = entropy_generator(None)

    restore_generator(other, saved)

    np.testing.assert_array_equal(other.standard_normal(5), expected)


def test_adaptive_clip_shrinks_when_updates_fit_and_grows_when_they_do_not() -> None:
    shrink, grow = (
        AdaptiveClip(1.0, 0.5, 0.2, count_stddev=1e-9),
        AdaptiveClip(1.0, 0.5, 0.2, count_stddev=1e-9),
    )
    rng = np.random.default_rng(0)

    shrink.step(unclipped=10, contributions=10, rng=rng)
    grow.step(unclipped=0, contributions=10, rng=rng)

    assert shrink.clip == pytest.approx(np.exp(-0.1))
    assert grow.clip == pytest.approx(np.exp(0.1))


def test_adaptive_update_noise_plus_count_noise_equal_the_configured_multiplier() -> None:
    z_update = update_noise_multiplier(1.0, count_stddev=5.0)

    # zero-out neighbours: the count's sensitivity is 1, so its multiplier is sigma_b = 5:
    # z_update = (1 - 1/25)^-1/2
    assert z_update == pytest.approx(0.96**-0.5)
    assert combined_noise_multiplier(z_update, 5.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="count noise"):
        update_noise_multiplier(2.0, count_stddev=2.0)


class ZeroGradModel:
    """Every example's gradient is zero: whatever DP-SGD changes is its noise."""

    def per_example_grads(
        self, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> dict[str, np.ndarray]:
        return {k: np.zeros((len(y), *v.shape), np.float32) for k, v in weights.items()}


def test_dpsgd_noise_has_the_std_the_mechanism_promises() -> None:
    n, batch, lr, clip, z = 1000, 50, 0.1, 2.0, 1.5
    weights = {"w": np.zeros(20_000, np.float32)}

    result = dp_sgd(
        ZeroGradModel(),
        weights,
        np.zeros((n, 1)),
        np.zeros(n, int),
        epochs=1,
        batch_size=batch,
        learning_rate=lr,
        params=DpSgdParams(clip, z),
        rng=np.random.default_rng(3),
    )

    # Each of the 20 steps moves w by -lr * N(0, (zC)^2) / (q n); they add up independently.
    q = sampling_rate(batch, n)
    expected = lr * z * clip / (q * n) * np.sqrt(steps_for(1, q))
    assert result.steps == 20 and result.event == GaussianEvent(z, q)
    assert np.std(result.weights["w"]) == pytest.approx(expected, rel=0.03)
