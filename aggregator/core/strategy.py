"""Aggregation strategies: how one update changes the global model.

Strategies are pure with respect to I/O: no broker, no clock, no disk. They
change the model arrays they are given in place and keep whatever buffer
state they need, which the aggregator checkpoints through ``state``/``restore``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import AbstractSet, Any

import numpy as np

from aggregator.core.arithmetic import accumulate_into, mix_into, step_into, zeros_like
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from training.weights import Weights

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

    def refuse(self, worker_id: str) -> Rejected | None:
        """Why a valid update from ``worker_id`` cannot be taken now (e.g. the privacy budget is spent).

        Called after validation, just before ``add``.
        """
        return None

    def closed(self) -> str | None:
        """Why this strategy takes no more updates at all, or ``None``: the service stops when it is set."""
        return None

    def release_scale(self) -> float | None:
        """c such that every step is model += c * sum_i w_i u_i, with data-independent 0 <= w_i <= 1.

        That form bounds one contribution's effect on a release by c * ||u_i||,
        which is what user-level DP needs (``aggregator.core.private``); ``None`` if
        this strategy (as configured) does not have it.
        """
        return None


class FedAsync(Strategy):
    """FedAsync (Xie et al., 2019): x <- (1 - a_t) x + a_t x_k, a_t = alpha * s(staleness).

    With ``sample_weighting``, a_t is further scaled by n_k / mean(n) over the
    updates seen so far (and capped at 1), so bigger partitions pull harder.
    With ``update_kind="delta"`` workers send d_k = x_k - x_base and the step is
    x <- x + a_t d_k: the form differential privacy can bound, since a clipped
    d_k moves the model by at most a_t * C.
    """

    name = "fedasync"
    update_kind: UpdateKind = "weights"

    def __init__(
        self,
        *,
        alpha: float = 0.6,
        staleness: StalenessFunction = Polynomial(0.5),
        sample_weighting: bool = False,
        update_kind: UpdateKind = "weights",
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.update_kind = update_kind
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
        if self.update_kind == "delta":
            step_into(model, contribution.arrays, weight)
        else:
            mix_into(model, contribution.arrays, weight)
        return StepOutcome(weight, stepped=True)

    def release_scale(self) -> float | None:
        # a_t = alpha * s(tau) with s <= 1: c = alpha, w = s(tau).
        return self.alpha if self.update_kind == "delta" and not self.sample_weighting else None

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

    def release_scale(self) -> float | None:
        # Unit weights make the divisor sum(n_k) exactly K, so a step is (eta / K) * sum s(tau_i) d_i.
        return None if self.sample_weighting else self.server_lr / self.buffer_size

    def state(self) -> tuple[Scalars, Weights]:
        arrays = dict(self._acc) if self._acc is not None and self._count else {}
        return {"count": self._count, "mass": self._mass}, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._count = int(scalars.get("count", 0))
        self._mass = float(scalars.get("mass", 0.0))
        self._acc = {name: np.array(a) for name, a in arrays.items()} if arrays else None
