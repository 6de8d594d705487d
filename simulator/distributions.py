"""Random durations from short specs such as ``lognormal:0,0.5`` (pure, seeded by the caller)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_SAMPLERS: dict[str, tuple[int, Callable[[np.random.Generator, tuple[float, ...]], float]]] = {
    "constant": (1, lambda rng, p: p[0]),
    "uniform": (2, lambda rng, p: float(rng.uniform(p[0], p[1]))),
    "exponential": (1, lambda rng, p: float(rng.exponential(p[0]))),
    "lognormal": (2, lambda rng, p: float(rng.lognormal(p[0], p[1]))),
    "gamma": (2, lambda rng, p: float(rng.gamma(p[0], p[1]))),
}


@dataclass(frozen=True)
class Distribution:
    """``constant:x``, ``uniform:a,b``, ``exponential:mean``, ``lognormal:mu,sigma``,
    ``gamma:shape,scale``.
    """

    kind: str
    params: tuple[float, ...]

    def sample(self, rng: np.random.Generator) -> float:
        return max(_SAMPLERS[self.kind][1](rng, self.params), 0.0)

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"


def parse_distribution(spec: str) -> Distribution:
    """Parse a spec; ``ValueError`` with what is wrong (shown as one line by the CLI)."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in _SAMPLERS:
        raise ValueError(f"unknown distribution {kind!r} (choose {', '.join(_SAMPLERS)})")
    try:
        params = tuple(float(x) for x in rest.split(",")) if rest.strip() else ()
    except ValueError:
        raise ValueError(f"distribution {spec!r}: parameters must be numbers") from None
    arity = _SAMPLERS[kind][0]
    if len(params) != arity:
        raise ValueError(
            f"distribution {kind} takes {arity} parameter(s), got {len(params)} in {spec!r}"
        )
    if kind != "lognormal" and any(p < 0 for p in params):
        raise ValueError(f"distribution {spec!r}: parameters must not be negative")
    return Distribution(kind, params)
