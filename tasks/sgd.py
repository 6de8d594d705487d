"""Minibatch SGD over a built-in model, deterministic under a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.data import Dataset
from tasks.models import Model
from training.weights import Weights


@dataclass(frozen=True)
class SgdResult:
    weights: Weights
    mean_loss: float
    steps: int


def sgd(
    model: Model,
    weights: Weights,
    data: Dataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
) -> SgdResult:
    """Plain SGD: shuffle each epoch, one step per minibatch. ``weights`` is not modified."""
    w = {k: np.array(v, dtype=np.float32, copy=True) for k, v in weights.items()}
    losses, steps = [], 0
    for _ in range(epochs):
        order = rng.permutation(len(data))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss, grads = model.loss_and_grad(w, data.x[idx], data.y[idx])
            for name, g in grads.items():
                w[name] -= np.float32(learning_rate) * g
            losses.append(loss)
            steps += 1
    return SgdResult(w, float(np.mean(losses)) if losses else 0.0, steps)
