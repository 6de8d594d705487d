"""Built-in NumPy models. Each exposes ``init``, ``loss_and_grad`` and ``predict``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from training.weights import Weights


class Model(Protocol):
    """A differentiable classifier over float32 features."""

    def init(self, rng: np.random.Generator, n_features: int, n_classes: int) -> Weights: ...

    def loss_and_grad(
        self, weights: Weights, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Weights]: ...

    def per_example_grads(self, weights: Weights, x: np.ndarray, y: np.ndarray) -> Weights: ...

    def logits(self, weights: Weights, x: np.ndarray) -> np.ndarray: ...


def get_model(name: str, hidden: int = 64) -> Model:
    """Look a built-in model up by name (``logreg`` or ``mlp``)."""
    from tasks.models.logreg import LogisticRegression
    from tasks.models.mlp import MLP

    if name == "logreg":
        return LogisticRegression()
    if name == "mlp":
        return MLP(hidden=hidden)
    raise ValueError(f"unknown model {name!r} (choose logreg or mlp)")
