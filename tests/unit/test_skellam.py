"""Distributed DP's Skellam noise: its variance, its tail margin, and the sum it leaves."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon
from scipy import stats

import secagg.client
import secagg.skellam
from secagg.buffer import BufferSetup
from secagg.local import run_buffer
from secagg.params import choose_parameters
from secagg.quantize import MAX_SUM, FixedPoint, Ints, centred
from secagg.skellam import (
    MAX_RATE,
    TAIL_LOG2,
    SkellamNoise,
    noise_generator,
    noise_margin,
    noisy_fixed_point,
    sensitivity,
    skellam,
    tail_log2,
)

COHORT = tuple(f"w{i}" for i in range(6))


def setup(
    *, dimension: int, z: float = 1.0, contributors: int = 4, clip: float = 1.0
) -> BufferSetup:
    params = choose_parameters(len(COHORT), dropout_rate=0.2)
    return BufferSetup(
        buffer_id="run.0.0",
        cohort=COHORT,
        dimension=dimension,
        degree=params.degree,
        threshold=params.threshold,
        clip=clip,
        max_weight=1.0,
        min_contributors=contributors,
        noise_multiplier=z,
    )


def test_k_workers_noise_sums_to_the_variance_of_central_dps_gaussian() -> None:
    noise = SkellamNoise(noise_multiplier=1.3, contributors=5)
    fixed = noisy_fixed_point(1.0, 8, 100_000, noise)
    target = (1.3 * sensitivity(fixed.scale, 100_000)) ** 2  # (z D)^2 in integer units
    rng = np.random.default_rng(7)
    coordinates = 200_000
    total = np.sum([skellam(rng, fixed.noise_variance, coordinates) for _ in range(5)], axis=0)
    # The sample variance of 200,000 near-Gaussian draws has relative std sqrt(2 / n) = 0.32 %:
    # 2 % is over 6 standard deviations, and a per-worker variance off by a factor K is far out.
    assert abs(float(np.var(total)) / target - 1) < 0.02
    assert abs(float(np.mean(total))) < 6 * math.sqrt(target / coordinates)
    assert total.dtype == np.int64


def test_the_chernoff_margin_bounds_the_exact_skellam_tail() -> None:
    mu = 50.0
    for t in (5, 20, 40, 80):
        exact = 2 * stats.skellam.sf(t - 1, mu, mu)  # P(|X| >= t)
        assert exact <= 2 ** tail_log2(2 * mu, t)


def test_the_margin_is_the_smallest_one_meeting_the_tail_target() -> None:
    variance, draws = 1e10, 6 * 1_000_000
    margin = noise_margin(variance, draws)
    budget = TAIL_LOG2 - math.log2(draws)
    assert tail_log2(variance, margin + 1) <= budget < tail_log2(variance, margin)
    assert 7 * math.sqrt(variance) < margin < 10 * math.sqrt(variance)  # Gaussian-like tail


@pytest.mark.parametrize(
    ("summands", "contributors", "z", "dimension"),
    [(4, 4, 1.0, 100), (10, 5, 0.7, 1_000_000), (100, 50, 0.5, 1_000_000), (10, 2, 100.0, 10**6)],
)
def test_signal_rounding_and_noise_fit_below_the_summand_limit(
    summands: int, contributors: int, z: float, dimension: int
) -> None:
    fixed = noisy_fixed_point(2.0, summands, dimension, SkellamNoise(z, contributors))
    signal = fixed.scale * 2.0
    assert signal + 1 + fixed.noise_margin <= fixed.limit == MAX_SUM // summands
    assert fixed.noise_variance / 2 <= MAX_RATE
    want = (z * sensitivity(signal, dimension)) ** 2 / contributors
    assert fixed.noise_variance == pytest.approx(want)


def test_noise_that_cannot_fit_is_refused_with_one_line() -> None:
    with pytest.raises(ValueError, match="does not fit") as refused:
        noisy_fixed_point(1.0, 10, 10**9, SkellamNoise(1000.0, 2))
    assert "\n" not in str(refused.value)


def recording(added: list[Ints]) -> Callable[[Ints, FixedPoint, np.random.Generator], Ints]:
    real = secagg.skellam.add_noise

    def add_noise(ints: Ints, fixed: FixedPoint, rng: np.random.Generator) -> Ints:
        noisy = real(ints, fixed, rng)
        added.append(noisy - ints)
        return noisy

    return add_noise


def updates(dimension: int, seed: int = 0) -> dict[str, npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    return {u: rng.normal(0, 0.5 / math.sqrt(dimension), dimension) for u in COHORT}


def test_the_unmasked_sum_minus_the_plaintext_sum_is_the_workers_noise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    added: list[Ints] = []
    monkeypatch.setattr(secagg.client, "add_noise", recording(added))
    buffer, values = setup(dimension=5_000), updates(5_000)
    run = run_buffer(buffer, values, {u: 1.0 for u in COHORT}, seed=4)
    fixed = buffer.fixed_point
    total = centred(run.outcome.total)  # type: ignore[union-attr]
    plain = fixed.scale * np.sum([values[u] for u in COHORT], axis=0)
    noise = np.sum(added, axis=0)
    assert len(added) == len(COHORT)
    # Rounding moves each summand by less than 1 unit: the rest is exactly the noise.
    assert np.max(np.abs(total - plain - noise)) < len(COHORT)
    assert np.std(noise) > 1000 * len(COHORT)  # the noise is there, far above rounding


def test_noise_at_the_margin_on_a_full_scale_value_does_not_wrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = setup(dimension=1, contributors=2)
    fixed = buffer.fixed_point

    def at_the_margin(rng: np.random.Generator, variance: float, size: int) -> Ints:
        return np.full(size, fixed.noise_margin, dtype=np.int64)

    monkeypatch.setattr(secagg.skellam, "skellam", at_the_margin)
    full = {u: np.array([1.0]) for u in COHORT}  # every value at the clip
    run = run_buffer(buffer, full, {u: 1.0 for u in COHORT}, seed=5)
    total = int(centred(run.outcome.total)[0])  # type: ignore[union-attr]
    signal = round(fixed.scale)
    assert total == len(COHORT) * (signal + fixed.noise_margin) > 0  # no wrap to negative


def test_a_draw_past_the_margin_is_held_to_the_summand_limit() -> None:
    fixed = FixedPoint(1.0, 2, 10.0, 20, noise_margin=9, noise_variance=1e6)
    noisy = secagg.skellam.add_noise(np.array([10, -10] * 50), fixed, np.random.default_rng(1))
    assert np.max(np.abs(noisy)) <= 20


def test_the_noise_seed_needs_32_bytes_and_different_seeds_give_different_noise() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        noise_generator(bytes(16))
    a = skellam(noise_generator(bytes(32)), 1e6, 100)
    b = skellam(noise_generator(bytes(31) + b"\x01"), 1e6, 100)
    assert not np.array_equal(a, b)


def skellam_rdp(alpha: float, l2: float, l1: float, mu: float) -> float:
    """Agarwal, Kairouz, Liu 2021: RDP of order alpha of the d-dimensional Skellam mechanism with
    Skellam(mu) noise per coordinate, for L1 and L2 sensitivities ``l1`` and ``l2``."""
    extra = min(((2 * alpha - 1) * l2**2 + 6 * l1) / (16 * mu**2), 3 * l1 / (4 * mu))
    return alpha * l2**2 / (4 * mu) + extra


@pytest.mark.parametrize(
    ("summands", "contributors", "z", "dimension"),
    [(6, 4, 1.0, 10_000), (10, 5, 0.7, 1_000_000), (4, 2, 3.0, 100)],
)
def test_the_gaussian_epsilon_is_within_a_millionth_of_the_skellam_bound(
    summands: int, contributors: int, z: float, dimension: int
) -> None:
    fixed = noisy_fixed_point(1.0, summands, dimension, SkellamNoise(z, contributors))
    signal = fixed.scale
    l2 = sensitivity(signal, dimension)
    l1 = math.sqrt(dimension) * signal + dimension  # rounding adds < 1 per coordinate
    mu = contributors * fixed.noise_variance / 2  # K workers' noise: Skellam(K mu_w)
    orders = list(range(2, 257))  # the Skellam bound holds for integer orders
    buffers, delta = 100, 1e-5
    skellam_eps = compute_epsilon(
        orders, [buffers * skellam_rdp(a, l2, l1, mu) for a in orders], delta
    )[0]
    gaussian_eps = compute_epsilon(orders, [buffers * a / (2 * z * z) for a in orders], delta)[0]
    assert gaussian_eps <= skellam_eps <= gaussian_eps * (1 + 1e-6)
