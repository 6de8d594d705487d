"""Gaussian noise from an injected ``numpy.random.Generator``, and that generator's durable state.

The generator is always passed in: tests seed it, services draw it from OS
entropy and checkpoint its state so that a restart never replays noise that
was already added to a published release.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

#: Elements drawn per slice: bounds the temporary for large models.
CHUNK = 1 << 18


def add_gaussian_noise(
    arrays: Mapping[str, np.ndarray], std: float, rng: np.random.Generator
) -> None:
    """arrays += N(0, std^2) elementwise, in place, in slices (float arrays only)."""
    if std < 0:
        raise ValueError("noise std must be >= 0")
    if std == 0:
        return
    for name, a in arrays.items():
        if a.dtype.kind != "f":
            raise ValueError(f"{name}: cannot add Gaussian noise to dtype {a.dtype}")
        flat = a.reshape(-1)
        if flat.size and not np.shares_memory(flat, a):
            raise ValueError(f"{name}: array must be contiguous")
        for start in range(0, flat.size, CHUNK):
            part = flat[start : start + CHUNK]
            part += (rng.standard_normal(part.size) * std).astype(a.dtype, copy=False)


def entropy_generator(seed: int | None) -> np.random.Generator:
    """Seeded for tests and benchmarks; OS entropy otherwise (noise must be unpredictable)."""
    return np.random.default_rng(seed)


def generator_state(rng: np.random.Generator) -> str:
    """The generator's state as JSON text (its 128-bit integers do not fit msgpack ints)."""
    return json.dumps(rng.bit_generator.state)


def restore_generator(rng: np.random.Generator, state: str) -> None:
    """Put ``rng`` back into a state from ``generator_state``."""
    rng.bit_generator.state = json.loads(state)


def noise_fingerprint(rng: np.random.Generator) -> str:
    """A short digest of the generator's state: equal fingerprints mean the same noise to come."""
    return hashlib.sha256(generator_state(rng).encode()).hexdigest()[:16]
