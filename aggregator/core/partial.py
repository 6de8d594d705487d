"""FedBuff's buffer as exact partial sums, so that edges can each sum a share of a step.

FedBuff steps x <- x + eta * (sum_i s(tau_i) n_i d_i) / (sum_i n_i): linear in
its buffer. Edge aggregators can each sum the updates routed to them and a root
add the partial sums, but floating-point addition is not associative: split
the same updates differently, or add them in another order, and the bits
differ. So each weighted delta s * n * d is converted once, in float64, to
fixed point (int64 in units of 2^-FRACTION_BITS) and the buffer is an integer
sum, which any split and any order give bit for bit. The rounding (2^-33 per
coordinate per update) is far below float32's resolution of a model weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from training.weights import CHUNK, Weights, aggregated

FRACTION_BITS = 32
#: |one term| stays below 2^52 units, so 1024 of them cannot overflow int64 (2^63).
TERM_LIMIT = float(2**52)
MAX_TERMS = 1024


class OutOfRange(ValueError):
    """A weighted delta too large for the exact buffer (bounded norms keep updates far below)."""


def fixed_terms(delta: Mapping[str, np.ndarray], weight: float) -> dict[str, np.ndarray]:
    """``weight * delta`` in fixed point, entry by entry (non-float entries are not aggregated)."""
    scale = float(weight) * 2.0**FRACTION_BITS
    return {
        name: _fixed(name, np.asarray(d), scale)
        for name, d in delta.items()
        if aggregated(np.asarray(d))
    }


def _fixed(name: str, delta: np.ndarray, scale: float) -> np.ndarray:
    """round(delta * scale) as int64, in float64, slice by slice: one cache-sized temporary
    instead of four model-sized ones (the bits are the same either way)."""
    flat = delta.reshape(-1)
    out = np.empty(flat.size, np.int64)
    work = np.empty(min(CHUNK, flat.size), np.float64)
    for start in range(0, flat.size, CHUNK):
        part = work[: min(CHUNK, flat.size - start)]
        np.multiply(flat[start : start + part.size], scale, out=part, dtype=np.float64)
        if part.size and not float(np.max(np.abs(part))) < TERM_LIMIT:
            raise OutOfRange(f"{name}: a weighted delta beyond the exact buffer's range")
        np.rint(part, out=part)
        out[start : start + part.size] = part
    return out.reshape(delta.shape)


@dataclass(frozen=True)
class Partial:
    """A share of one step: the integer sum of its terms, sum(n), and which updates it holds."""

    sums: Mapping[str, np.ndarray]
    mass: int
    update_ids: frozenset[str]

    @classmethod
    def of(cls, terms: Iterable[tuple[str, Mapping[str, np.ndarray], int]]) -> Partial:
        """The partial of ``(update_id, fixed terms, n)`` triples."""
        sums: dict[str, np.ndarray] = {}
        mass, ids = 0, set()
        for update_id, arrays, examples in terms:
            if update_id in ids:
                raise ValueError(f"update {update_id} twice in one partial")
            ids.add(update_id)
            mass += examples
            for name, a in arrays.items():
                if name in sums:
                    sums[name] += a
                else:
                    sums[name] = a.copy()
        if len(ids) > MAX_TERMS:
            raise ValueError(f"more than {MAX_TERMS} updates in one step")
        return cls(sums, mass, frozenset(ids))


def combine(partials: Iterable[Partial]) -> Partial:
    """The root's sum of its edges' partials; ``ValueError`` if two of them share an update."""
    sums: dict[str, np.ndarray] = {}
    mass, ids = 0, frozenset[str]()
    for p in partials:
        if ids & p.update_ids:
            raise ValueError(f"updates in two partials: {sorted(ids & p.update_ids)}")
        ids, mass = ids | p.update_ids, mass + p.mass
        for name, a in p.sums.items():
            sums[name] = sums[name] + a if name in sums else a.copy()
    return Partial(sums, mass, ids)


def step_with(model: Weights, buffer: Partial, server_lr: float) -> None:
    """x <- x + eta * sum / mass, in place, in the model's dtype (one rounding per coordinate)."""
    if buffer.mass <= 0:
        raise ValueError("a step needs at least one example")
    scale = server_lr / buffer.mass / 2.0**FRACTION_BITS
    for name, x in model.items():
        if name in buffer.sums and aggregated(x):
            step = buffer.sums[name].astype(np.float64) * scale
            x[...] = (x.astype(np.float64) + step).astype(x.dtype)
