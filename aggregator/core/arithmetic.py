"""The model arithmetic of asynchronous aggregation, as small numpy functions.

The ``*_into`` functions work in place on arrays the aggregator owns, so a
step costs no full-model copies; ``weighted_average`` is the synchronous
FedAvg reference the strategies are tested against.

Only float entries are aggregated. Integer and boolean entries (a BatchNorm's
``num_batches_tracked``, a step counter) are the aggregator's: every strategy
keeps the value the model started with, whatever an update says about them,
since averaging a count makes no sense and would let one worker set it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from training.weights import CHUNK, Weights, aggregated


def scaled_add(dst: np.ndarray, src: np.ndarray, scale: float) -> None:
    """dst += scale * src in place, slice by slice so no full-size temporary is made (a no-op on a
    non-float ``dst``: see the module's docstring).
    """
    if not aggregated(dst):
        return
    flat_dst, flat_src = dst.reshape(-1), np.asarray(src).reshape(-1)
    if flat_dst.size and not np.shares_memory(flat_dst, dst):
        raise ValueError("dst must be contiguous")
    for start in range(0, flat_dst.size, CHUNK):
        part = flat_src[start : start + CHUNK] * scale
        flat_dst[start : start + CHUNK] += part.astype(flat_dst.dtype, copy=False)


def mix_into(model: Weights, local: Mapping[str, np.ndarray], alpha: float) -> None:
    """FedAsync: model <- (1 - alpha) * model + alpha * local, in place.

    Written as model = (1 - alpha)(model - local) + local: three in-place
    passes and no temporary.
    """
    for name, x in model.items():
        if not aggregated(x):
            continue
        x -= local[name]
        x *= x.dtype.type(1.0 - alpha)
        x += local[name]


def accumulate_into(acc: Weights, delta: Mapping[str, np.ndarray], weight: float) -> None:
    """acc <- acc + weight * delta, in place."""
    for name, a in acc.items():
        scaled_add(a, delta[name], weight)


def step_into(model: Weights, acc: Mapping[str, np.ndarray], scale: float) -> None:
    """model <- model + scale * acc, in place, in the model's dtype."""
    for name, x in model.items():
        scaled_add(x, acc[name], scale)


def zeros_like(model: Mapping[str, np.ndarray]) -> Weights:
    """A fresh accumulator shaped (and typed) like ``model``."""
    return {name: np.zeros(x.shape, dtype=x.dtype) for name, x in model.items()}


def weighted_average(results: Iterable[tuple[Mapping[str, np.ndarray], float]]) -> Weights:
    """FedAvg: sum_i w_i x_i / sum_i w_i (computed in float64)."""
    results = list(results)
    total = sum(w for _, w in results)
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    out: Weights = {}
    for name in results[0][0]:
        acc = np.zeros(np.shape(results[0][0][name]), np.float64)
        for x, w in results:
            acc += w * np.asarray(x[name], np.float64)
        out[name] = acc / total
    return out
