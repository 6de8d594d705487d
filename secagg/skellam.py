"""Distributed DP under secure aggregation: every worker adds its share of Skellam noise.

Skellam(mu) is the difference of two independent Poisson(mu) draws: integer-valued,
mean 0, variance 2 mu, and closed under sums (Agarwal, Kairouz, Liu 2021, "The
Skellam Mechanism for Differentially Private Federated Learning"). A worker adds
one draw per coordinate to its rounded fixed-point vector before masking, so the
unmasked sum of m contributions carries Skellam(m mu) noise.

Target. With noise multiplier z, at least K contributions per buffer and L2
sensitivity ``D`` of one rounded vector in integer units, each worker's noise has
variance ``(z D)^2 / K``: any sum of m >= K contributions has variance at least
``(z D)^2``, central DP's Gaussian on the same sum. The rounded vector of a value
clipped to ``signal`` integer units moves by less than 1 per coordinate, so
``D = signal + sqrt(d)`` (``sensitivity``).

No wrap-around. Each noise draw is held to ``|n| <= noise_margin``; the margin is the
smallest integer with ``d * n * P(|Skellam| > margin) <= 2^-40`` over all d
coordinates of all n summands (the Chernoff bound below), and the signal is the
largest that leaves ``signal + 1 + margin <= limit`` (``secagg.quantize``). A draw
past the margin is clamped, which may happen with probability at most 2^-40 per
buffer: that probability is part of the guarantee's delta.

Chernoff bound: E exp(l X) = exp(2 mu (cosh l - 1)), so for t > 0
``P(X >= t) <= exp(-(t asinh(t / 2mu) - sqrt(t^2 + 4mu^2) + 2mu))``, and twice that
for |X|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from secagg.quantize import MAX_SUM, FixedPoint, Ints

#: log2 of the probability, per buffer, that any noise draw of any summand passes the margin.
TAIL_LOG2 = -40.0
#: The largest Poisson rate drawn. numpy's sampler computes in float64: below 2^36 every draw
#: and the arithmetic around it stay under 2^37, where float64 still resolves 2^-15, so the
#: integer draws are exact (a coarser resolution would make their low bits non-random).
MAX_RATE = float(1 << 36)


@dataclass(frozen=True)
class SkellamNoise:
    """Noise multiplier z on the sum of at least ``contributors`` (K) contributions."""

    noise_multiplier: float
    contributors: int

    def __post_init__(self) -> None:
        z = self.noise_multiplier
        if not (isinstance(z, float | int) and math.isfinite(z) and z > 0):
            raise ValueError(f"noise multiplier must be positive and finite, got {z}")
        if self.contributors < 1:
            raise ValueError(f"need at least one contributor, got {self.contributors}")

    def worker_variance(self, sensitivity: float) -> float:
        """One worker's noise variance per coordinate: (z D)^2 / K."""
        return (self.noise_multiplier * sensitivity) ** 2 / self.contributors


def sensitivity(signal: float, dimension: int) -> float:
    """L2 bound, in integer units, of one rounded vector whose values scale to ``signal``."""
    return signal + math.sqrt(dimension)


def tail_log2(variance: float, t: float) -> float:
    """log2 of the Chernoff bound on P(|X| >= t) for X ~ Skellam of ``variance``."""
    if t <= 0:
        return 0.0
    mu = variance / 2
    root = math.sqrt(t * t + 4 * mu * mu)
    rate = t * math.asinh(t / (2 * mu)) - t * t / (root + 2 * mu)  # no cancellation
    return min(0.0, 1.0 - rate / math.log(2))


def noise_margin(variance: float, draws: int) -> int:
    """The smallest integer m with ``draws * P(|X| > m) <= 2^TAIL_LOG2``."""
    budget = TAIL_LOG2 - math.log2(draws)
    low, high = 0, 1
    while tail_log2(variance, high + 1) > budget:
        low, high = high, 2 * high
    while low < high:  # the smallest m in [low, high] with P(|X| >= m + 1) small enough
        middle = (low + high) // 2
        if tail_log2(variance, middle + 1) > budget:
            low = middle + 1
        else:
            high = middle
    return low


def noisy_fixed_point(
    value_bound: float, summands: int, dimension: int, noise: SkellamNoise
) -> FixedPoint:
    """The finest scale at which the values, their rounding and the noise cannot wrap."""
    limit = MAX_SUM // summands
    draws = summands * dimension

    def margin(signal: int) -> int:
        return noise_margin(noise.worker_variance(sensitivity(signal, dimension)), draws)

    rate_cap = math.sqrt(2 * MAX_RATE * noise.contributors) / noise.noise_multiplier
    low, high = 0, min(limit - 2, math.floor(rate_cap - math.sqrt(dimension)))
    while low < high:  # the largest signal with signal + 1 + margin(signal) <= limit
        middle = (low + high + 1) // 2
        if middle + 1 + margin(middle) <= limit:
            low = middle
        else:
            high = middle - 1
    if low < 1:
        raise ValueError(
            f"Skellam noise for z = {noise.noise_multiplier:g}, K = {noise.contributors} and "
            f"{dimension} parameters does not fit {summands} summands in Z_2^32"
        )
    variance = noise.worker_variance(sensitivity(low, dimension))
    return FixedPoint(
        value_bound=value_bound,
        summands=summands,
        scale=low / value_bound,
        limit=limit,
        noise_margin=margin(low),
        noise_variance=variance,
    )


def skellam(rng: np.random.Generator, variance: float, size: int) -> Ints:
    """``size`` draws of Skellam with ``variance`` (two Poisson draws of rate variance / 2)."""
    rate = variance / 2
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"Poisson rate {rate} outside (0, {MAX_RATE:g}]")
    return rng.poisson(rate, size).astype(np.int64) - rng.poisson(rate, size).astype(np.int64)


def noise_generator(seed: bytes) -> np.random.Generator:
    """numpy's PCG64 seeded with ``seed`` (32 bytes from ``os.urandom`` in service, fresh for each
    buffer and never stored or sent).

    PCG64 is not a cryptographic generator, but nobody sees its output: a draw leaves the worker
    only masked, and unmasked only inside a sum with the signal and K - 1 other workers' noise,
    so attacks that recover its state from outputs have none to start from, and a 256-bit seed
    cannot be guessed (a 32-bit one could: Flower's masks).
    """
    if len(seed) < 32:
        raise ValueError(f"a noise seed needs 32 bytes of entropy, got {len(seed)}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(seed, "big"))))


def add_noise(ints: Ints, fixed: FixedPoint, rng: np.random.Generator) -> Ints:
    """``ints`` plus one worker's noise, held to the summand limit (a no-op but w.p. 2^-40)."""
    noisy: Ints = ints + skellam(rng, fixed.noise_variance, ints.shape[0])
    np.clip(noisy, -fixed.limit, fixed.limit, out=noisy)
    return noisy
