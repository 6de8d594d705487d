"""Compressed update arrays: float16, int8 with a per-tensor scale, and top-k sparsification.

Pure codecs over named numpy arrays. ``compress`` is what a worker sends;
``expand`` turns what arrived back into dense arrays of the model's dtypes,
checking everything a hostile sender could get wrong first (names, dtypes,
shapes, finite scales, value bounds, index range and uniqueness, the number of
entries kept). Wire layout per mode (docs/protocol.md, section 5):

* ``float16``: each array as float16, same name and shape.
* ``int8``: each array as int8 in [-127, 127], same name and shape, and
  ``scales[name]``: the value is ``q * scale`` (stochastic rounding, unbiased).
* ``topk``: ``name`` holds the k kept values (1-D, the model's dtype) and
  ``idx:name`` their flat indices (1-D uint32, unique); every other entry is 0.
  The entries not sent stay in the worker's residual (error feedback).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from schemas.errors import DecodeError
from schemas.messages import CompressionMode

Arrays = Mapping[str, np.ndarray]
INDEX_PREFIX = "idx:"
INT8_MAX = 127


@dataclass(frozen=True)
class Compressed:
    """What goes in the update: the arrays and, for int8, one scale per array."""

    arrays: dict[str, np.ndarray]
    scales: dict[str, float]


def kept_entries(size: int, fraction: float) -> int:
    """Entries top-k keeps of ``size``: ceil(fraction * size), at least 1 (0 of an empty array)."""
    return min(size, max(1, math.ceil(fraction * size))) if size else 0


def compress(
    arrays: Arrays,
    mode: CompressionMode,
    *,
    rng: np.random.Generator,
    fraction: float = 0.01,
    residual: dict[str, np.ndarray] | None = None,
) -> Compressed:
    """Encode ``arrays`` for the wire. ``residual`` (top-k only) is updated in place: it holds what
    was not sent yet and is added to the next update (error feedback).
    """
    if mode == "none":
        return Compressed(dict(arrays), {})
    if mode == "float16":
        return Compressed({n: a.astype(np.float16) for n, a in arrays.items()}, {})
    if mode == "int8":
        pairs = {n: _int8(a, rng) for n, a in arrays.items()}
        return Compressed(
            {n: q for n, (q, _) in pairs.items()}, {n: s for n, (_, s) in pairs.items()}
        )
    out: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        values, index = _topk(name, arr, fraction, residual)
        out[name], out[INDEX_PREFIX + name] = values, index
    return Compressed(out, {})


def _int8(arr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    x = np.asarray(arr, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    scale = peak / INT8_MAX if peak > 0 else 1.0
    scaled = x / scale
    q = np.floor(scaled + rng.random(x.shape))  # rounds up with probability frac(scaled): unbiased
    return np.clip(q, -INT8_MAX, INT8_MAX).astype(np.int8), scale


def _topk(
    name: str, arr: np.ndarray, fraction: float, residual: dict[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest entries (by magnitude) of ``arr`` plus its residual; the rest: the residual."""
    flat = np.asarray(arr).reshape(-1)
    carried = residual.get(name) if residual is not None else None
    acc = flat + carried if carried is not None and carried.shape == flat.shape else flat.copy()
    k = kept_entries(acc.size, fraction)
    index = np.sort(np.argpartition(np.abs(acc), acc.size - k)[acc.size - k :]) if k else acc[:0]
    index = index.astype(np.uint32)
    values = acc[index].astype(arr.dtype)
    if residual is not None:
        acc[index] = 0
        residual[name] = acc.astype(arr.dtype, copy=False)
    return values, index


def expand(
    received: Arrays,
    scales: Mapping[str, float],
    *,
    mode: CompressionMode,
    model: Arrays,
    fraction: float,
) -> dict[str, np.ndarray]:
    """Dense arrays in the model's dtypes from a compressed update; ``DecodeError`` if malformed."""
    expected = set(model) if mode != "topk" else {*model, *(INDEX_PREFIX + n for n in model)}
    if set(received) != expected:
        raise DecodeError(
            "array-names",
            f"{mode} update: missing {sorted(expected - set(received))}, "
            f"unexpected {sorted(set(received) - expected)}",
        )
    if mode == "int8" and set(scales) != set(model):
        raise DecodeError("bad-compression", "int8 update: one scale per array, no other")
    if mode != "int8" and scales:
        raise DecodeError("bad-compression", f"{mode} update carries scales")
    expanders = {"none": _plain, "float16": _half, "int8": _dequantize, "topk": _densify}
    return {n: expanders[mode](n, ref, received, scales, fraction) for n, ref in model.items()}


def _shape(name: str, arr: np.ndarray, ref: np.ndarray, dtype: np.dtype) -> None:
    if arr.shape != ref.shape:
        raise DecodeError("shape-mismatch", f"{name}: shape {arr.shape}, expected {ref.shape}")
    if arr.dtype != dtype:
        raise DecodeError("dtype-mismatch", f"{name}: dtype {arr.dtype}, expected {dtype}")


def _plain(
    name: str, ref: np.ndarray, got: Arrays, scales: Mapping[str, float], f: float
) -> np.ndarray:
    return got[name]


def _half(
    name: str, ref: np.ndarray, got: Arrays, scales: Mapping[str, float], f: float
) -> np.ndarray:
    _shape(name, got[name], ref, np.dtype(np.float16))
    return got[name].astype(ref.dtype)


def _dequantize(
    name: str, ref: np.ndarray, got: Arrays, scales: Mapping[str, float], f: float
) -> np.ndarray:
    q, scale = got[name], scales[name]
    _shape(name, q, ref, np.dtype(np.int8))
    if not (math.isfinite(scale) and scale > 0):
        raise DecodeError("bad-compression", f"{name}: scale {scale!r} is not finite and positive")
    if q.size and int(q.min()) < -INT8_MAX:
        raise DecodeError("bad-compression", f"{name}: int8 values lie in [-127, 127]")
    return (q.astype(np.float64) * scale).astype(ref.dtype)


def _densify(
    name: str, ref: np.ndarray, got: Arrays, scales: Mapping[str, float], f: float
) -> np.ndarray:
    values, index = got[name], got[INDEX_PREFIX + name]
    k = kept_entries(ref.size, f)
    if values.ndim != 1 or index.ndim != 1 or values.shape != index.shape or values.size > k:
        raise DecodeError(
            "bad-compression",
            f"{name}: top-k sends two 1-D arrays of the same length, at most {k} entries",
        )
    if values.dtype != ref.dtype or index.dtype != np.uint32:
        raise DecodeError("dtype-mismatch", f"{name}: values {ref.dtype}, indices uint32")
    if index.size and int(index.max()) >= ref.size:
        raise DecodeError("bad-compression", f"{name}: an index lies beyond {ref.size} entries")
    if np.unique(index).size != index.size:
        raise DecodeError("bad-compression", f"{name}: an index appears twice")
    dense = np.zeros(ref.size, dtype=ref.dtype)
    dense[index.astype(np.int64)] = values
    return dense.reshape(ref.shape)
