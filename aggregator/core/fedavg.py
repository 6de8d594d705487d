"""Synchronous FedAvg on the asynchronous pipeline: rounds over the active workers.

Round ``v`` collects at most one delta per worker trained on version ``v``;
it closes, and version ``v + 1`` is made, when every worker the aggregator
considers active (``aggregator.core.activity``) has contributed and at least
``min_updates`` have. Updates trained on an older version arrived too late
for their round and count for nothing (weight 0), as in synchronous FL.
With every worker contributing once this is exactly sample-weighted FedAvg.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import numpy as np

from aggregator.core.arithmetic import accumulate_into, step_into, zeros_like
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from schemas.messages import UpdateKind
from training.weights import Weights

IGNORED = StepOutcome(0.0, stepped=False)


class FedAvg(Strategy):
    """x <- x + eta * sum_k n_k delta_k / sum_k n_k over one round's contributors."""

    name = "fedavg"
    update_kind: UpdateKind = "delta"
    synchronous = True

    def __init__(
        self, *, server_lr: float = 1.0, sample_weighting: bool = True, min_updates: int = 1
    ) -> None:
        if server_lr <= 0:
            raise ValueError("server_lr must be positive")
        if min_updates < 1:
            raise ValueError("min_updates must be at least 1")
        self.server_lr = server_lr
        self.sample_weighting = sample_weighting
        self.min_updates = min_updates
        self._acc: Weights | None = None
        self._contributors: set[str] = set()
        self._mass = 0.0

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        """Buffer a fresh contribution; never steps (``close_round`` does)."""
        if contribution.staleness > 0 or contribution.worker_id in self._contributors:
            return IGNORED
        if self._acc is None:
            self._acc = zeros_like(model)
        examples = contribution.num_examples if self.sample_weighting else 1
        accumulate_into(self._acc, contribution.arrays, float(examples))
        self._contributors.add(contribution.worker_id)
        self._mass += examples
        return StepOutcome(float(examples), stepped=False)

    def round_complete(self, active: Set[str]) -> bool:
        """Every active worker has contributed, and enough have."""
        contributors = self._contributors
        return len(contributors) >= self.min_updates and active <= contributors

    def close_round(self, model: Weights, active: Set[str]) -> bool:
        if self._acc is None or not self.round_complete(active):
            return False
        step_into(model, self._acc, self.server_lr / self._mass)
        for acc in self._acc.values():
            acc.fill(0.0)
        self._contributors.clear()
        self._mass = 0.0
        return True

    def pending(self) -> int:
        return len(self._contributors)

    def state(self) -> tuple[Scalars, Weights]:
        arrays = dict(self._acc) if self._acc is not None and self._contributors else {}
        return {"contributors": sorted(self._contributors), "mass": self._mass}, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._contributors = set(scalars.get("contributors", []))
        self._mass = float(scalars.get("mass", 0.0))
        self._acc = {name: np.array(a) for name, a in arrays.items()} if arrays else None
