"""Defences against poisoned updates: a norm bound and coordinate-wise robust statistics.

Pure numpy. The norm bound (Sun et al., 2019) compares each update's size to
the running median of recent sizes, so it needs no tuning to the model's
scale and survives as long as fewer than half of recent arrivals are attacks.
The coordinate-wise median and beta-trimmed mean (Yin et al., 2018) replace
the buffered average of FedBuff; they tolerate attackers as long as, per
buffer, they stay below half (median) or below the trimmed share (trimmed mean).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from training.weights import Weights, l2_norm

NormAction = Literal["reject", "clip"]
#: Norms (including the current one) needed before the bound applies: a median of five survives two
#: outliers.
MIN_HISTORY = 5


def update_norm(
    arrays: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray], kind: UpdateKind
) -> float:
    """How far an update would move the model: ||delta||, or ||weights - model|| for a weights
    update.
    """
    if kind == "delta":
        return l2_norm({name: arrays[name] for name in model})
    return l2_norm(arrays, model)


def clipped(
    arrays: Mapping[str, np.ndarray],
    model: Mapping[str, np.ndarray],
    kind: UpdateKind,
    scale: float,
) -> Weights:
    """The update shrunk towards 'no change' by ``scale`` (0 < scale < 1), in the model's dtypes."""
    if kind == "delta":
        return {
            name: (np.asarray(arrays[name], np.float64) * scale).astype(ref.dtype)
            for name, ref in model.items()
        }
    return {
        name: (ref + (np.asarray(arrays[name], np.float64) - ref) * scale).astype(ref.dtype)
        for name, ref in model.items()
    }


@dataclass(frozen=True)
class Screened:
    """An update that passed the norm bound; ``arrays`` are the original ones unless clipped."""

    arrays: Mapping[str, np.ndarray]
    norm: float
    clipped: bool


class NormBound:
    """Reject (or clip) updates whose norm exceeds ``factor`` x the running median norm.

    The window holds the norms of recent arrivals, including refused ones, so
    the bound follows honest updates as they shrink over training and cannot
    lock itself out; an attacker moves a median only by being the majority.
    Until the window holds ``MIN_HISTORY`` norms there is no median to trust,
    so those first updates are refused (``norm-calibrating``): one poisoned
    update at version 0 would otherwise blow the model up before any bound
    exists, and honest workers simply train again on the same version.
    """

    def __init__(
        self, *, factor: float = 3.0, action: NormAction = "reject", window: int = 100
    ) -> None:
        if factor <= 1.0:
            raise ValueError("the norm bound factor must be above 1")
        if window < MIN_HISTORY:
            raise ValueError(f"the norm window must hold at least {MIN_HISTORY} norms")
        self.factor = factor
        self.action = action
        self.norms: deque[float] = deque(maxlen=window)

    def bound(self) -> float | None:
        """The current limit, or ``None`` while there is too little history."""
        if len(self.norms) < MIN_HISTORY:
            return None
        return self.factor * float(np.median(np.fromiter(self.norms, float)))

    def screen(
        self, arrays: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray], kind: UpdateKind
    ) -> Screened | Rejected:
        """Record this update's norm, then pass, clip or reject it."""
        norm = update_norm(arrays, model, kind)
        if not math.isfinite(norm):
            return Rejected("norm-bound", "the update's norm overflows")
        self.norms.append(norm)
        limit = self.bound()
        if limit is None:
            return Rejected(
                "norm-calibrating",
                f"collecting update norms for the bound ({len(self.norms)} of {MIN_HISTORY})",
            )
        if norm <= limit:
            return Screened(arrays, norm, clipped=False)
        if self.action == "reject" or limit <= 0.0:
            return Rejected(
                "norm-bound",
                f"norm {norm:.4g} exceeds {self.factor:g} x the running median ({limit:.4g})",
            )
        return Screened(clipped(arrays, model, kind, limit / norm), norm, clipped=True)

    def state(self) -> list[float]:
        return list(self.norms)

    def restore(self, norms: list[float]) -> None:
        self.norms.clear()
        self.norms.extend(float(n) for n in norms)


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
