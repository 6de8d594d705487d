"""Staleness functions s(tau): how much an update trained on an old version still counts.

Staleness tau is version arithmetic: the aggregator's current version minus
the version the update was trained from (0 = fresh). FedAsync (Xie et al.,
2019) defines constant, polynomial and hinge forms; FedBuff (Nguyen et al.,
2022) uses the polynomial form with a = 0.5, i.e. 1 / sqrt(1 + tau).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


class StalenessFunction(Protocol):
    def __call__(self, staleness: int) -> float: ...


@dataclass(frozen=True)
class Constant:
    """s(tau) = 1: every update counts fully, however old."""

    def __call__(self, staleness: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Polynomial:
    """s(tau) = (1 + tau)^-a."""

    a: float = 0.5

    def __call__(self, staleness: int) -> float:
        return float((1.0 + staleness) ** -self.a)


@dataclass(frozen=True)
class Hinge:
    """s(tau) = 1 if tau <= b, else 1 / (a (tau - b) + 1)."""

    a: float = 10.0
    b: int = 4

    def __call__(self, staleness: int) -> float:
        if staleness <= self.b:
            return 1.0
        return 1.0 / (self.a * (staleness - self.b) + 1.0)


StalenessName = Literal["constant", "polynomial", "hinge"]


def staleness_function(
    name: StalenessName, *, a: float | None = None, b: int | None = None
) -> StalenessFunction:
    """Build a staleness function by name; ``a``/``b`` default to the paper's values."""
    if name == "constant":
        return Constant()
    if name == "polynomial":
        return Polynomial(a=0.5 if a is None else a)
    if name == "hinge":
        return Hinge(a=10.0 if a is None else a, b=4 if b is None else b)
    raise ValueError(f"unknown staleness function {name!r}")
