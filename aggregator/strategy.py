"""Aggregation strategies: how one update changes the global model.

Strategies are pure with respect to I/O: no broker, no clock, no disk. They
change the model arrays they are given in place and keep whatever buffer
state they need, which the aggregator checkpoints through ``state``/``restore``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import AbstractSet, Any, Mapping

import numpy as np

from aggregator.aggregate import Weights, accumulate_into, mix_into, step_into, zeros_like
from aggregator.staleness import Polynomial, StalenessFunction
from schemas.messages import UpdateKind

Scalars = dict[str, Any]


@dataclass(frozen=True)
class Contribution:
    """A validated update, ready to apply."""

    update_id: str
    worker_id: str
    staleness: int
    num_examples: int
    arrays: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class StepOutcome:
    """What applying one contribution did."""

    weight: float
    stepped: bool


class Strategy(ABC):
    """Base of every strategy. ``stepped`` means the global model changed (a new version)."""

    name: str
    update_kind: UpdateKind

    @abstractmethod
    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        """Fold ``contribution`` into the strategy (and the model, when it steps)."""

    def state(self) -> tuple[Scalars, Weights]:
        """Scalars and arrays to checkpoint."""
        return {}, {}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        """Load what ``state`` returned."""

    def pending(self) -> int:
        """Contributions received but not yet reflected in the model."""
        return 0

    def close_round(self, model: Weights, active: AbstractSet[str]) -> bool:
        """Round-based strategies step here once ``active`` workers have all contributed."""
        return False


class FedAsync(Strategy):
    """FedAsync (Xie et al., 2019): x <- (1 - a_t) x + a_t x_k, a_t = alpha * s(staleness).

    With ``sample_weighting``, a_t is further scaled by n_k / mean(n) over the
    updates seen so far (and capped at 1), so bigger partitions pull harder.
    """

    name = "fedasync"
    update_kind: UpdateKind = "weights"

    def __init__(self, *, alpha: float = 0.6, staleness: StalenessFunction = Polynomial(0.5), sample_weighting: bool = False) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.staleness = staleness
        self.sample_weighting = sample_weighting
        self._updates = 0
        self._examples = 0

    def mixing_weight(self, staleness: int, num_examples: int) -> float:
        """a_t for an update (call after counting it in the running mean)."""
        weight = self.alpha * self.staleness(staleness)
        if self.sample_weighting and self._updates:
            weight *= num_examples / (self._examples / self._updates)
        return min(weight, 1.0)

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        self._updates += 1
        self._examples += contribution.num_examples
        weight = self.mixing_weight(contribution.staleness, contribution.num_examples)
        mix_into(model, contribution.arrays, weight)
        return StepOutcome(weight, stepped=True)

    def state(self) -> tuple[Scalars, Weights]:
        return {"updates": self._updates, "examples": self._examples}, {}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._updates = int(scalars.get("updates", 0))
        self._examples = int(scalars.get("examples", 0))


class FedBuff(Strategy):
    """FedBuff (Nguyen et al., 2022): buffer K deltas, then x <- x + eta * weighted mean delta.

    Each delta is weighted by s(staleness) * n_k (n_k = 1 without sample
    weighting) and the sum is divided by sum(n_k): with no staleness, K equal to
    the number of workers and eta = 1 this is exactly sample-weighted FedAvg,
    while stale deltas shrink the step rather than merely re-balancing it.
    """

    name = "fedbuff"
    update_kind: UpdateKind = "delta"

    def __init__(
        self,
        *,
        buffer_size: int = 10,
        server_lr: float = 1.0,
        staleness: StalenessFunction = Polynomial(0.5),
        sample_weighting: bool = True,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        if server_lr <= 0:
            raise ValueError("server_lr must be positive")
        self.buffer_size = buffer_size
        self.server_lr = server_lr
        self.staleness = staleness
        self.sample_weighting = sample_weighting
        self._acc: Weights | None = None
        self._count = 0
        self._mass = 0.0

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        if self._acc is None:
            self._acc = zeros_like(model)
        examples = contribution.num_examples if self.sample_weighting else 1
        weight = self.staleness(contribution.staleness) * examples
        accumulate_into(self._acc, contribution.arrays, weight)
        self._count += 1
        self._mass += examples
        if self._count < self.buffer_size:
            return StepOutcome(weight, stepped=False)
        step_into(model, self._acc, self.server_lr / self._mass)
        for acc in self._acc.values():
            acc.fill(0.0)
        self._count, self._mass = 0, 0.0
        return StepOutcome(weight, stepped=True)

    def pending(self) -> int:
        return self._count

    def state(self) -> tuple[Scalars, Weights]:
        arrays = dict(self._acc) if self._acc is not None and self._count else {}
        return {"count": self._count, "mass": self._mass}, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._count = int(scalars.get("count", 0))
        self._mass = float(scalars.get("mass", 0.0))
        self._acc = {name: np.array(a) for name, a in arrays.items()} if arrays else None
