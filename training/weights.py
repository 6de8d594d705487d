"""Named model arrays, as every role holds them, and the one L2 norm over them."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: A model (or an update) as named arrays: ``{"W": ..., "b": ...}``.
Weights = dict[str, np.ndarray]

#: Elements per slice when a whole-model pass needs a temporary: bounds it to a few MB.
CHUNK = 1 << 18


def aggregated(array: np.ndarray) -> bool:
    """Whether aggregation changes this entry: floats yes; integers and booleans (counters such as
    BatchNorm's ``num_batches_tracked``) never, in any strategy: they keep the aggregator's value.
    """
    return np.asarray(array).dtype.kind == "f"


def float_entries(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The entries aggregation (and so noise) applies to, as the same arrays (no copies)."""
    return {name: a for name, a in arrays.items() if aggregated(a)}


def squared_distance(a: np.ndarray, b: np.ndarray | None = None) -> float:
    """sum((a - b)^2) (or sum(a^2)) in float64, slice by slice: no full-size temporary, no float32
    overflow.
    """
    flat_a = np.asarray(a).reshape(-1)
    flat_b = None if b is None else np.asarray(b).reshape(-1)
    total = 0.0
    for start in range(0, flat_a.size, CHUNK):
        part = flat_a[start : start + CHUNK].astype(np.float64)
        if flat_b is not None:
            part -= flat_b[start : start + CHUNK]
        total += float(np.dot(part, part))
    return total


def l2_norm(
    arrays: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray] | None = None
) -> float:
    """L2 norm of all arrays together, as if concatenated; with ``reference``, of ``arrays -
    reference``.

    Names are those of ``reference`` when it is given (the model an update is checked against).
    """
    if reference is None:
        return math.sqrt(sum(squared_distance(a) for a in arrays.values()))
    return math.sqrt(sum(squared_distance(arrays[name], ref) for name, ref in reference.items()))


def flatten(arrays: Mapping[str, np.ndarray], like: Mapping[str, np.ndarray]) -> np.ndarray:
    """``like``'s names in sorted order, each array raveled, as one float64 vector.

    The layout secure aggregation masks: every party derives it from the model alone.
    """
    names = sorted(like)
    if not names:
        return np.zeros(0)
    return np.concatenate([np.asarray(arrays[n], dtype=np.float64).reshape(-1) for n in names])


def unflatten(vector: np.ndarray, like: Mapping[str, np.ndarray]) -> Weights:
    """Inverse of ``flatten``: arrays shaped (and typed) like ``like``'s."""
    out: Weights = {}
    start = 0
    for name in sorted(like):
        ref = like[name]
        out[name] = np.asarray(vector[start : start + ref.size], dtype=ref.dtype).reshape(ref.shape)
        start += ref.size
    if start != vector.size:
        raise ValueError(f"a vector of {vector.size} values for a model of {start}")
    return out


def dimension(like: Mapping[str, np.ndarray]) -> int:
    """How many values ``flatten`` yields for a model shaped like ``like``."""
    return sum(int(a.size) for a in like.values())
