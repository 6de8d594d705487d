"""Defences against poisoned updates: coordinate-wise robust statistics (and the norm bound).

Pure numpy. The norm bound lives in ``aggregator.core.norm_bound`` and is
re-exported here. The coordinate-wise median and beta-trimmed mean (Yin et al., 2018) replace
the buffered average of FedBuff; they tolerate attackers as long as, per
buffer, they stay below half (median) or below the trimmed share (trimmed mean).
"""

from __future__ import annotations

import math

import numpy as np

from aggregator.core.norm_bound import (
    MIN_HISTORY,
    MIN_WORKERS,
    NormAction,
    NormBound,
    Screened,
    clipped,
    update_norm,
)

__all__ = [
    "MIN_HISTORY",
    "MIN_WORKERS",
    "NormAction",
    "NormBound",
    "Screened",
    "clipped",
    "coordinate_median",
    "trim_count",
    "trimmed_mean",
    "update_norm",
]


def coordinate_median(stack: np.ndarray) -> np.ndarray:
    """Median over the first axis (one row per update), coordinate by coordinate."""
    median: np.ndarray = np.median(stack, axis=0)
    return median


def trimmed_mean(stack: np.ndarray, trim: int) -> np.ndarray:
    """Mean over the first axis after dropping the ``trim`` largest and smallest values per
    coordinate.
    """
    rows = stack.shape[0]
    if trim < 0 or 2 * trim >= rows:
        raise ValueError(f"cannot trim {trim} from each end of {rows} values")
    kept = stack if trim == 0 else np.sort(stack, axis=0)[trim : rows - trim]
    mean: np.ndarray = kept.mean(axis=0)
    return mean


def trim_count(rows: int, fraction: float) -> int:
    """Values trimmed from each end: floor(fraction * rows), leaving at least one in the middle."""
    return min(int(math.floor(fraction * rows)), (rows - 1) // 2)
