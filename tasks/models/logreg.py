"""Multinomial logistic regression: logits = x W + b."""

from __future__ import annotations

import numpy as np

from tasks.models.losses import cross_entropy, softmax, softmax_grad
from training.weights import Weights


class LogisticRegression:
    """Weights ``W`` (features x classes) and ``b`` (classes), float32, zero-initialised."""

    def init(self, rng: np.random.Generator, n_features: int, n_classes: int) -> Weights:
        return {
            "W": np.zeros((n_features, n_classes), np.float32),
            "b": np.zeros(n_classes, np.float32),
        }

    def logits(self, weights: Weights, x: np.ndarray) -> np.ndarray:
        return x @ weights["W"] + weights["b"]

    def loss_and_grad(
        self, weights: Weights, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Weights]:
        probs = softmax(self.logits(weights, x))
        g = softmax_grad(probs, y) / max(len(y), 1)
        return cross_entropy(probs, y), {
            "W": (x.T @ g).astype(np.float32),
            "b": g.sum(axis=0).astype(np.float32),
        }

    def per_example_grads(self, weights: Weights, x: np.ndarray, y: np.ndarray) -> Weights:
        """Gradient of each example's loss, stacked on a leading axis (for DP-SGD clipping)."""
        g = softmax_grad(softmax(self.logits(weights, x)), y)
        return {"W": np.einsum("ni,nj->nij", x, g).astype(np.float32), "b": g.astype(np.float32)}
