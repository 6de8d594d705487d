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
    work = np.result_type(flat_dst.dtype, flat_src.dtype)  # a float64 buffer adds in float64
    factor = work.type(scale)
    for start in range(0, flat_dst.size, CHUNK):
        part = flat_src[start : start + CHUNK].astype(work, copy=False) * factor
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
    """A fresh accumulator shaped like ``model``: float64 for float entries.

    A buffer sums staleness x examples x delta over many updates; in float32,
    two finite updates with large example counts overflowed it to infinity, and
    a light update beside heavy ones was rounded away.
    """
    return {
        name: np.zeros(x.shape, dtype=np.float64 if aggregated(x) else x.dtype)
        for name, x in model.items()
    }


def step_is_finite(
    model: Mapping[str, np.ndarray],
    acc: Mapping[str, np.ndarray] | None,
    delta: Mapping[str, np.ndarray],
    weight: float,
    scale: float,
) -> bool:
    """Whether ``model + scale * (acc + weight * delta)`` is finite in the model's dtypes.

    Computed slice by slice in float64 and thrown away: nothing is changed.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        for name, x in model.items():
            if not aggregated(x):
                continue
            flat_x, flat_d = x.reshape(-1), np.asarray(delta[name]).reshape(-1)
            flat_a = None if acc is None else np.asarray(acc[name]).reshape(-1)
            for start in range(0, flat_x.size, CHUNK):
                end = start + CHUNK
                buffered = flat_d[start:end].astype(np.float64) * weight
                if flat_a is not None:
                    buffered += flat_a[start:end]
                step = flat_x[start:end] + (buffered * scale).astype(x.dtype)
                if not np.isfinite(step).all():
                    return False
    return True


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
