"""DP-SGD (Abadi et al. 2016) over a built-in model: Poisson sampling, per-example clipping,
Gaussian noise.

Each step samples every example independently with rate q = batch_size / n,
clips each sampled example's gradient to L2 norm C, adds N(0, (zC)^2) to the
sum and divides by the expected batch size q n. One step is one
``GaussianEvent(z, q)`` for accounting; the caller composes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from privacy.accountant import GaussianEvent
from privacy.clipping import clipped_sum
from training.weights import Weights


class PerExampleModel(Protocol):
    def per_example_grads(self, weights: Weights, x: np.ndarray, y: np.ndarray) -> Weights: ...


@dataclass(frozen=True)
class DpSgdParams:
    clip: float
    noise_multiplier: float

    def __post_init__(self) -> None:
        if self.clip <= 0:
            raise ValueError("DP-SGD clip norm must be positive")
        if self.noise_multiplier < 0:
            raise ValueError("DP-SGD noise multiplier must be >= 0")


@dataclass(frozen=True)
class DpSgdResult:
    weights: Weights
    steps: int
    event: GaussianEvent


def sampling_rate(batch_size: int, n: int) -> float:
    """q = batch_size / n, capped at 1."""
    if n <= 0:
        raise ValueError("DP-SGD needs at least one example")
    return min(1.0, batch_size / n)


def steps_for(epochs: int, q: float) -> int:
    """Steps that visit each example ``epochs`` times in expectation: round(epochs / q) >= 1."""
    return max(1, int(round(epochs / q)))


def noisy_gradient(
    model: PerExampleModel,
    w: Weights,
    x: np.ndarray,
    y: np.ndarray,
    params: DpSgdParams,
    expected_batch: float,
    rng: np.random.Generator,
) -> Weights:
    """(sum of clipped per-example gradients + N(0, (zC)^2)) / expected batch size."""
    if len(y):
        total = clipped_sum(model.per_example_grads(w, x, y), params.clip)
    else:
        total = {k: np.zeros(v.shape, np.float64) for k, v in w.items()}
    std = params.noise_multiplier * params.clip
    return {k: (g + rng.standard_normal(g.shape) * std) / expected_batch for k, g in total.items()}


def dp_sgd(
    model: PerExampleModel,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    params: DpSgdParams,
    rng: np.random.Generator,
) -> DpSgdResult:
    """Run DP-SGD from ``weights`` (not modified) on (x, y); returns the weights and the steps
    taken.
    """
    n = len(y)
    q = sampling_rate(batch_size, n)
    steps = steps_for(epochs, q)
    w = {k: np.array(v, dtype=np.float32, copy=True) for k, v in weights.items()}
    for _ in range(steps):
        picked = np.flatnonzero(rng.random(n) < q)
        grad = noisy_gradient(model, w, x[picked], y[picked], params, q * n, rng)
        for name, g in grad.items():
            w[name] -= np.float32(learning_rate) * g.astype(np.float32)
    return DpSgdResult(w, steps, GaussianEvent(params.noise_multiplier, q))
