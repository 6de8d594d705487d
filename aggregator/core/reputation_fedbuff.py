"""FedBuff with per-worker reputation (``--aggregation reputation``).

The buffer is the robust FedBuff buffer (one share per worker, staleness-
weighted rows). At each release every worker with a row, and every excluded
worker that sent something since the last release, is scored
(``aggregator.core.reputation``). Then:

* rows of excluded workers are dropped;
* while any remaining worker is unproven (fewer than ``evidence`` scores), the
  remaining rows are combined by centered clipping, so early releases are
  protected before there is evidence;
* once all are proven, by their plain mean: after the attackers are out,
  FedBuff on the honest workers, with nobody down-weighted for being an
  outlier.

An excluded worker's update is taken (acknowledged, kept for scoring, audited
with ``excluded``) but weighs 0 and takes no place in the buffer; it is not
counted among the workers sharing a buffer either, so the admitted workers
fill the buffer without it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aggregator.core.byzantine import centered_clip, flatten, unflatten
from aggregator.core.reputation import Reputation, ReputationConfig
from aggregator.core.robust_fedbuff import RobustFedBuff
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.strategy import Contribution, Scalars, StepOutcome
from aggregator.core.trajectory import worker_votes
from aggregator.core.validation import Rejected
from training.weights import Weights

_OBSERVED = "observed/"


class ReputationFedBuff(RobustFedBuff):
    """Robust FedBuff that excludes workers with a persistently low reputation."""

    def __init__(
        self,
        *,
        buffer_size: int = 10,
        server_lr: float = 1.0,
        staleness: StalenessFunction = Polynomial(0.5),
        clip_iterations: int = 3,
        reputation: ReputationConfig | None = None,
    ) -> None:
        super().__init__(
            rule="centered-clip",
            buffer_size=buffer_size,
            server_lr=server_lr,
            staleness=staleness,
            clip_iterations=clip_iterations,
        )
        self.reputation = Reputation(reputation)
        #: The latest delta (flattened) of each excluded worker since the last release.
        self.observed: dict[str, np.ndarray] = {}

    def refuse(self, worker_id: str) -> Rejected | None:
        if self.reputation.is_excluded(worker_id):
            return None  # taken at weight 0, and not one of the workers sharing the buffer
        return super().refuse(worker_id)

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        worker = contribution.worker_id
        if not self.reputation.is_excluded(worker):
            return super().add(model, contribution)
        arrays = {n: np.asarray(contribution.arrays[n])[None] for n in model}
        self.observed[worker] = flatten(arrays)[0]
        reputation = self.reputation.reputations[worker]
        return StepOutcome(0.0, stepped=False, excluded=f"reputation {reputation:.3f}")

    def combine(self, rows: Weights) -> Weights:
        stack = flatten(rows)
        members = self.membership.members
        names, votes = worker_votes(stack, members)
        late = [w for w in self.observed if w not in names]
        if late:
            votes = np.vstack([votes, *(self.observed[w][None] for w in late)])
        self.reputation.observe(names + late, votes)
        self.observed.clear()
        keep = np.array([not self.reputation.is_excluded(m) for m in members])
        kept = stack[keep]
        if not keep.any():
            vector = np.zeros(stack.shape[1])
        elif all(self.reputation.proven(m) for m in members if not self.reputation.is_excluded(m)):
            vector = kept.mean(axis=0)
        else:
            vector = centered_clip(kept, self._center_vector(stack.shape[1]), self.clip_iterations)
        combined = unflatten(vector, rows)
        self._center = {n: np.array(a, rows[n].dtype) for n, a in combined.items()}
        return combined

    def state(self) -> tuple[Scalars, Weights]:
        scalars, arrays = super().state()
        workers = list(self.observed)
        observed = {f"{_OBSERVED}{i}": self.observed[w] for i, w in enumerate(workers)}
        scalars = {**scalars, **self.reputation.state(), "observed_workers": workers}
        return scalars, {**arrays, **observed}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        super().restore(scalars, {k: v for k, v in arrays.items() if not k.startswith(_OBSERVED)})
        self.reputation.restore(scalars)
        self.observed = {
            str(w): np.array(arrays[f"{_OBSERVED}{i}"], np.float64)
            for i, w in enumerate(scalars.get("observed_workers", []))
        }
