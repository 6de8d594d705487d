"""FedAsync: mix every arriving update into the model at once, discounted by its staleness."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aggregator.core.arithmetic import mix_into, step_into
from aggregator.core.fair_share import ArrivalShare
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from schemas.messages import UpdateKind
from training.weights import Weights


class FedAsync(Strategy):
    """FedAsync (Xie et al., 2019): x <- (1 - a_t) x + a_t x_k, a_t = alpha * s(staleness).

    With ``sample_weighting``, a_t is further scaled by n_k / mean(n) over the
    updates seen so far (and capped at 1), so bigger partitions pull harder.
    With ``fair_share``, a_t is also scaled by the worker's ``ArrivalShare``
    factor, so a fast worker has no more influence than a typical one.
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
        fair_share: bool = False,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.update_kind = update_kind
        self.alpha = alpha
        self.staleness = staleness
        self.sample_weighting = sample_weighting
        self._updates = 0
        self._examples = 0
        self.shares = ArrivalShare() if fair_share else None

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
        if self.shares is not None:
            weight *= self.shares.record(contribution.worker_id)
        if self.update_kind == "delta":
            step_into(model, contribution.arrays, weight)
        else:
            mix_into(model, contribution.arrays, weight)
        return StepOutcome(weight, stepped=True)

    def release_scale(self) -> float | None:
        # a_t = alpha * s(tau) with s <= 1: c = alpha, w = s(tau).
        # The fair-share factor is in (0, 1] and depends on arrival times only: w stays <= 1.
        return self.alpha if self.update_kind == "delta" and not self.sample_weighting else None

    def state(self) -> tuple[Scalars, Weights]:
        shares = {"arrivals": self.shares.state()} if self.shares is not None else {}
        return {"updates": self._updates, "examples": self._examples, **shares}, {}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._updates = int(scalars.get("updates", 0))
        self._examples = int(scalars.get("examples", 0))
        if self.shares is not None:
            self.shares.restore(list(scalars.get("arrivals", [])))
