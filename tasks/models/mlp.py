"""One-hidden-layer perceptron with ReLU: logits = relu(x W1 + b1) W2 + b2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.models.losses import cross_entropy, softmax, softmax_grad
from training.weights import Weights


@dataclass(frozen=True)
class MLP:
    hidden: int = 64

    def init(self, rng: np.random.Generator, n_features: int, n_classes: int) -> Weights:
        he = np.sqrt(2.0 / n_features)
        return {
            "W1": (rng.standard_normal((n_features, self.hidden)) * he).astype(np.float32),
            "b1": np.zeros(self.hidden, np.float32),
            "W2": (
                rng.standard_normal((self.hidden, n_classes)) * np.sqrt(1.0 / self.hidden)
            ).astype(np.float32),
            "b2": np.zeros(n_classes, np.float32),
        }

    def _forward(self, weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.maximum(x @ weights["W1"] + weights["b1"], 0.0)
        return hidden, hidden @ weights["W2"] + weights["b2"]

    def logits(self, weights: Weights, x: np.ndarray) -> np.ndarray:
        return self._forward(weights, x)[1]

    def loss_and_grad(
        self, weights: Weights, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Weights]:
        hidden, logits = self._forward(weights, x)
        probs = softmax(logits)
        g_out = softmax_grad(probs, y) / max(len(y), 1)
        g_hidden = (g_out @ weights["W2"].T) * (hidden > 0)
        grads = {
            "W1": x.T @ g_hidden,
            "b1": g_hidden.sum(axis=0),
            "W2": hidden.T @ g_out,
            "b2": g_out.sum(axis=0),
        }
        return cross_entropy(probs, y), {k: v.astype(np.float32) for k, v in grads.items()}

    def per_example_grads(self, weights: Weights, x: np.ndarray, y: np.ndarray) -> Weights:
        hidden, logits = self._forward(weights, x)
        g_out = softmax_grad(softmax(logits), y)
        g_hidden = (g_out @ weights["W2"].T) * (hidden > 0)
        grads = {
            "W1": np.einsum("ni,nj->nij", x, g_hidden),
            "b1": g_hidden,
            "W2": np.einsum("ni,nj->nij", hidden, g_out),
            "b2": g_out,
        }
        return {k: v.astype(np.float32) for k, v in grads.items()}
