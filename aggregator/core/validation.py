"""Is an update fit to apply to the current model? Pure checks, typed verdicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.messages import ClientUpdate, UpdateKind


@dataclass(frozen=True)
class Accepted:
    staleness: int


@dataclass(frozen=True)
class Rejected:
    """Why an update was not applied; ``reason`` is a short slug, ``detail`` for humans."""

    reason: str
    detail: str
    #: Filled in once the update decoded (for the audit line); a raw message has neither.
    update_id: str | None = None
    worker_id: str | None = None


def validate_update(
    update: ClientUpdate,
    *,
    model: Mapping[str, np.ndarray],
    version: int,
    expected_kind: UpdateKind,
    max_staleness: int | None,
) -> Accepted | Rejected:
    """Check kind, array names, shapes, dtypes, version arithmetic and finiteness."""
    if update.update_kind != expected_kind:
        return Rejected(
            "wrong-update-kind",
            f"sent {update.update_kind}, this federation expects {expected_kind}",
        )
    if set(update.arrays) != set(model):
        missing, extra = (
            sorted(set(model) - set(update.arrays)),
            sorted(set(update.arrays) - set(model)),
        )
        return Rejected("array-names", f"missing {missing}, unexpected {extra}")
    for name, ref in model.items():
        arr = update.arrays[name]
        if arr.shape != ref.shape:
            return Rejected("shape-mismatch", f"{name}: shape {arr.shape}, expected {ref.shape}")
        if arr.dtype != ref.dtype:
            return Rejected("dtype-mismatch", f"{name}: dtype {arr.dtype}, expected {ref.dtype}")
    if update.base_version > version:
        return Rejected(
            "future-version",
            f"base version {update.base_version} is ahead of the current {version}",
        )
    staleness = version - update.base_version
    if max_staleness is not None and staleness > max_staleness:
        return Rejected("too-stale", f"staleness {staleness} exceeds the maximum {max_staleness}")
    refused = check_values(update.arrays)
    if refused:
        return refused
    return Accepted(staleness)


def check_values(arrays: Mapping[str, np.ndarray]) -> Rejected | None:
    """Refuse NaN, infinity, and magnitudes beyond ``magnitude_limit``."""
    for name, arr in arrays.items():
        if arr.dtype.kind != "f":
            continue
        if not arr.size:
            continue
        # Two reductions and no temporary array (isfinite and abs would each allocate one of the
        # update's size): NaN propagates through min and max, and an infinity is one of them.
        lo, hi = float(arr.min()), float(arr.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return Rejected("non-finite", f"{name} contains NaN or infinity")
        limit = magnitude_limit(arr.dtype)
        if max(-lo, hi) > limit:
            return Rejected(
                "out-of-range",
                f"{name} holds values beyond {limit:.3g} (the square root of the dtype's range)",
            )
    return None


def magnitude_limit(dtype: np.dtype[Any]) -> float:
    """The largest magnitude an update may carry: sqrt(max) of its dtype.

    A finite update near the dtype's edge (every weight +-3.4e38 in float32)
    overflows the first product or sum it enters, on the aggregator or in the
    workers' next training step, and the model never recovers; below sqrt(max)
    squares and pairwise products stay finite. Honest updates are many orders
    of magnitude smaller.
    """
    return math.sqrt(float(np.finfo(dtype).max))
