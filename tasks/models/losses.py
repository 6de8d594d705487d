"""Softmax cross-entropy, shared by the built-in models."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probs


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of integer labels ``y``."""
    picked = probs[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None)))) if len(y) else 0.0


def softmax_grad(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(sum of per-example losses)/d(logits): probabilities minus one-hot labels."""
    g: np.ndarray = probs.copy()
    g[np.arange(len(y)), y] -= 1.0
    return g
