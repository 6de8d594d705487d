"""Fixed point in Z_{2^32}: clip, stochastically round, encode; decode a sum without wrap-around.

The no-wrap rule. With ``n`` summands, each encoded integer is held to
``|q| <= limit = floor((2^31 - 1) / n)``, so ``|sum| <= n * limit <= 2^31 - 1``
and the centred representative of the sum mod 2^32 is the true integer sum.
The scale is ``(limit - 1 - noise_margin) / value_bound``: a value in
``[-value_bound, value_bound]`` scales to at most ``limit - 1 - noise_margin``
in magnitude, stochastic rounding moves it by less than 1, and
``noise_margin`` integer units per summand are left for distributed DP noise
added after rounding. Inputs are clamped to the bound and integers to the
limit first, so the rule holds for any input, not only for well-behaved ones.

The error. Each rounding moves a value by less than ``1 / scale`` and is
unbiased (up to 2^-32, the resolution of the uniform words), so a decoded sum
of ``m`` summands is within ``m / scale`` of the exact sum in every
coordinate (``decode_error_bound``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MODULUS = 1 << 32
_HALF = 1 << 31
#: The largest magnitude a centred sum may reach.
MAX_SUM = _HALF - 1

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class FixedPoint:
    """How values in ``[-value_bound, value_bound]`` map to integers, for up to ``summands``."""

    value_bound: float
    summands: int
    scale: float  # integer units per unit of value
    limit: int  # the largest |integer| one summand may contribute (noise included)
    noise_margin: int = 0  # room left per summand for distributed DP noise (``secagg.skellam``)
    noise_variance: float = 0.0  # each summand's noise variance per coordinate (0: no noise)


def fixed_point_for(value_bound: float, summands: int, *, noise_margin: int = 0) -> FixedPoint:
    """The finest scale at which ``summands`` values in ``[-bound, bound]`` cannot wrap."""
    if not (math.isfinite(value_bound) and value_bound > 0):
        raise ValueError(f"value bound must be positive and finite, got {value_bound}")
    if summands < 1:
        raise ValueError(f"need at least one summand, got {summands}")
    limit = MAX_SUM // summands
    signal = limit - 1 - noise_margin
    if noise_margin < 0 or signal < 1:
        raise ValueError(
            f"noise margin {noise_margin} leaves no room below the per-summand limit {limit}"
        )
    return FixedPoint(
        value_bound=value_bound,
        summands=summands,
        scale=signal / value_bound,
        limit=limit,
        noise_margin=noise_margin,
    )


def clip_l2(values: npt.ArrayLike, clip: float) -> Floats:
    """A float64 copy of ``values`` scaled down to L2 norm at most ``clip``."""
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be positive and finite, got {clip}")
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise ValueError("values must be finite")
    norm = float(np.sqrt(np.dot(flat, flat)))
    return flat * (clip / norm) if norm > clip else flat.copy()


def quantize(values: Floats, fixed: FixedPoint, uniform: Words) -> Ints:
    """Stochastic rounding of ``values * scale``: up with probability equal to the fractional part.

    ``uniform`` holds one uniform uint32 word per value (from a cryptographic
    stream: the rounding must not leak through a predictable generator).
    """
    if values.shape != uniform.shape:
        raise ValueError(f"{values.shape[0]} values but {uniform.shape[0]} uniform words")
    bound = fixed.value_bound
    scaled = np.clip(values, -bound, bound) * fixed.scale
    floor = np.floor(scaled)
    up = uniform.astype(np.float64) * (1.0 / MODULUS) < scaled - floor
    ints = floor.astype(np.int64) + up
    return np.clip(ints, -fixed.limit, fixed.limit)


def encode(ints: Ints) -> Words:
    """Integers as elements of Z_{2^32} (two's complement wrap)."""
    return ints.astype(np.uint32)


def centred(total: Words) -> Ints:
    """The representative of each element of Z_{2^32} in [-2^31, 2^31)."""
    signed = total.astype(np.int64)
    signed[signed >= _HALF] -= MODULUS
    return signed


def decode_sum(total: Words, fixed: FixedPoint) -> Floats:
    """The real-valued sum from its representative in Z_{2^32}."""
    return centred(total) / fixed.scale


def decode_error_bound(fixed: FixedPoint, summands: int) -> float:
    """Worst-case |decoded - exact| per coordinate for a sum of ``summands`` rounded values."""
    return summands / fixed.scale
