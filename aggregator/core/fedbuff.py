"""FedBuff: buffer K staleness-weighted deltas, then take one server step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aggregator.core.arithmetic import accumulate_into, step_into, step_is_finite, zeros_like
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from training.weights import Weights


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

    def _weighed(self, contribution: Contribution) -> tuple[float, int]:
        examples = contribution.num_examples if self.sample_weighting else 1
        return self.staleness(contribution.staleness) * examples, examples

    def screen(self, model: Weights, contribution: Contribution) -> Rejected | None:
        # Checked as each update enters the buffer (a step now would be finite), so the one that
        # would overflow the model is the one refused, not whichever happens to fill the buffer.
        weight, examples = self._weighed(contribution)
        scale = self.server_lr / (self._mass + examples)
        if step_is_finite(model, self._acc, contribution.arrays, weight, scale):
            return None
        return Rejected(
            "non-finite-step",
            "with this update in the buffer a step would take the model beyond its dtype's range",
        )

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        if self._acc is None:
            self._acc = zeros_like(model)
        weight, examples = self._weighed(contribution)
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
        # Unit weights make the divisor sum(n_k) exactly K, so a step is (eta / K) * sum s(tau_i)
        # d_i.
        return None if self.sample_weighting else self.server_lr / self.buffer_size

    def state(self) -> tuple[Scalars, Weights]:
        arrays = dict(self._acc) if self._acc is not None and self._count else {}
        return {"count": self._count, "mass": self._mass}, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._count = int(scalars.get("count", 0))
        self._mass = float(scalars.get("mass", 0.0))
        self._acc = {name: np.array(a) for name, a in arrays.items()} if arrays else None
