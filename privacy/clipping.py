"""L2 clipping: of a whole update (user-level DP) and of each example's gradient (DP-SGD)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from training.weights import Weights, l2_norm


@dataclass(frozen=True)
class Clipped:
    """A clipped copy of an update, its norm before clipping, and whether it was scaled down."""

    arrays: Weights
    norm: float
    scaled: bool


def clip_factor(norm: float, clip: float) -> float:
    """min(1, C / norm): the scale that brings a vector of ``norm`` inside the ball of radius C."""
    if clip <= 0:
        raise ValueError("clip norm must be positive")
    return 1.0 if norm <= clip else clip / norm


def clip_update(arrays: Mapping[str, np.ndarray], clip: float) -> Clipped:
    """A copy of ``arrays`` scaled to L2 norm at most ``clip`` (never modifies the input).

    The scaled copy is computed in float64 and cast back, then checked: float32
    rounding could otherwise leave the result a hair above C, and the sensitivity
    bound must hold exactly.
    """
    norm = l2_norm(arrays)
    factor = clip_factor(norm, clip)
    out = {k: (np.asarray(a, np.float64) * factor).astype(a.dtype) for k, a in arrays.items()}
    while factor < 1.0 and l2_norm(out) > clip:
        factor *= 1.0 - 1e-6
        out = {k: (np.asarray(a, np.float64) * factor).astype(a.dtype) for k, a in arrays.items()}
    return Clipped(out, norm, factor < 1.0)


def per_example_norms(grads: Mapping[str, np.ndarray]) -> np.ndarray:
    """L2 norm of each example's gradient (leading axis = example), over all arrays."""
    squares = [
        np.square(g.reshape(g.shape[0], -1), dtype=np.float64).sum(axis=1) for g in grads.values()
    ]
    norms: np.ndarray = np.sqrt(np.sum(squares, axis=0))
    return norms


def clipped_sum(grads: Mapping[str, np.ndarray], clip: float) -> Weights:
    """Sum over examples of each gradient clipped to L2 norm ``clip`` (float64)."""
    norms = per_example_norms(grads)
    factors = np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    return {k: np.tensordot(factors, g.astype(np.float64), axes=(0, 0)) for k, g in grads.items()}
