"""Whole-vector robust rules for a buffer of deltas: (multi-)Krum and centered clipping.

Pure numpy, over the buffer flattened to a (K, D) float64 matrix (every array
of the model, concatenated: these rules judge an update as a whole, unlike the
coordinate-wise median).

* **Krum / multi-Krum** (Blanchard et al., 2017): each delta is scored by the
  sum of squared distances to its K - f - 2 nearest neighbours; Krum keeps the
  best-scored one, multi-Krum averages the m best. Sound while at most f of
  the K are Byzantine and K > 2f + 2.
* **Centered clipping** (Karimireddy, He and Jaggi, 2021): starting from a
  center v (the previous release: the rule is built for momentum and
  asynchronous settings, where the last aggregate is a good guess of the
  next), repeat v <- v + mean_i clip_tau(d_i - v), where clip_tau shrinks a
  vector to length tau. tau is the median distance of the deltas from the
  center, recomputed each iteration, so no radius needs tuning and an attacker
  minority, however large its deltas, moves v by at most tau / K each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.weights import Weights


def flatten(rows: Mapping[str, np.ndarray]) -> np.ndarray:
    """(K, ...) arrays by name -> one (K, D) float64 matrix, names in the mapping's order."""
    parts = [np.asarray(r, np.float64).reshape(r.shape[0], -1) for r in rows.values()]
    return np.concatenate(parts, axis=1)


def unflatten(vector: np.ndarray, like: Mapping[str, np.ndarray]) -> Weights:
    """A (D,) vector back to arrays shaped like one row of each of ``like``'s (K, ...) arrays."""
    out: Weights = {}
    start = 0
    for name, rows in like.items():
        size = int(np.prod(rows.shape[1:], dtype=np.int64))
        out[name] = vector[start : start + size].reshape(rows.shape[1:])
        start += size
    return out


def default_byzantine(rows: int) -> int:
    """The largest f that Krum tolerates among ``rows`` deltas: K > 2f + 2."""
    return max(0, (rows - 3) // 2)


def krum_scores(stack: np.ndarray, byzantine: int) -> np.ndarray:
    """Each row's sum of squared distances to its K - f - 2 nearest other rows."""
    rows = stack.shape[0]
    neighbours = rows - byzantine - 2
    if rows <= 2 * byzantine + 2:
        raise ValueError(f"Krum needs K > 2f + 2 (K = {rows}, f = {byzantine})")
    squares = np.einsum("ij,ij->i", stack, stack)
    distances = squares[:, None] + squares[None, :] - 2.0 * (stack @ stack.T)
    np.fill_diagonal(distances, np.inf)
    nearest = np.sort(np.maximum(distances, 0.0), axis=1)[:, :neighbours]
    scores: np.ndarray = nearest.sum(axis=1)
    return scores


def multi_krum(stack: np.ndarray, byzantine: int, keep: int) -> np.ndarray:
    """Mean of the ``keep`` best-scored rows (``keep = 1`` is Krum)."""
    if not 1 <= keep <= stack.shape[0]:
        raise ValueError(f"cannot keep {keep} of {stack.shape[0]} rows")
    best = np.argsort(krum_scores(stack, byzantine), kind="stable")[:keep]
    mean: np.ndarray = stack[best].mean(axis=0)
    return mean


def centered_clip(stack: np.ndarray, center: np.ndarray, iterations: int = 3) -> np.ndarray:
    """v <- v + mean_i clip_tau(d_i - v), ``iterations`` times, tau = median ||d_i - v||."""
    if iterations < 1:
        raise ValueError("centered clipping needs at least one iteration")
    v = np.array(center, np.float64)
    for _ in range(iterations):
        offsets = stack - v
        lengths = np.sqrt(np.einsum("ij,ij->i", offsets, offsets))
        radius = float(np.median(lengths))
        scale = np.minimum(1.0, radius / np.maximum(lengths, np.finfo(np.float64).tiny))
        v = v + (offsets * scale[:, None]).mean(axis=0)
    return v
