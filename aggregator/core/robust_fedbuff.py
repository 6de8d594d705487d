"""FedBuff with a Byzantine-robust buffer: median, trimmed mean, (multi-)Krum, centered clipping
or trajectory trust.

Unlike ``FedBuff``, which keeps a running weighted sum, this keeps every
buffered delta (K x model memory), because robust statistics need them all.
Each delta is scaled by its staleness weight before it is stored. Example
counts are ignored: ``num_examples`` is self-reported, and weighting by it
would let one liar with a huge count decide every coordinate. A worker enters
each buffer no more than its share (``BufferMembership``): otherwise a fast
attacker could fill a buffer well beyond its share of the workers and
out-vote the trimmed mean or the median.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from aggregator.core.arithmetic import scaled_add
from aggregator.core.byzantine import (
    centered_clip,
    default_byzantine,
    flatten,
    multi_krum,
    unflatten,
)
from aggregator.core.membership import BufferMembership
from aggregator.core.robust import coordinate_median, trim_count, trimmed_mean
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from aggregator.core.trajectory import TrajectoryTrust
from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from training.weights import Weights

RobustRule = Literal["median", "trimmed-mean", "krum", "multi-krum", "centered-clip", "trajectory"]
#: Rules that judge each delta as a whole vector (``aggregator.core.byzantine``).
WHOLE_VECTOR_RULES = frozenset({"krum", "multi-krum", "centered-clip", "trajectory"})
_ROWS = "rows/"
_CENTER = "center/"
_TRUST = "trust/"


class RobustFedBuff(Strategy):
    """Buffer K staleness-weighted deltas, then x <- x + eta * robust_aggregate(deltas)."""

    name = "fedbuff"
    update_kind: UpdateKind = "delta"

    def __init__(
        self,
        *,
        rule: RobustRule = "median",
        buffer_size: int = 10,
        server_lr: float = 1.0,
        staleness: StalenessFunction = Polynomial(0.5),
        trim_fraction: float = 0.2,
        byzantine: int | None = None,
        clip_iterations: int = 3,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        if server_lr <= 0:
            raise ValueError("server_lr must be positive")
        if not 0.0 <= trim_fraction < 0.5:
            raise ValueError("trim_fraction must be in [0, 0.5)")
        self.byzantine = default_byzantine(buffer_size) if byzantine is None else byzantine
        if rule in ("krum", "multi-krum") and buffer_size <= 2 * self.byzantine + 2:
            raise ValueError(
                f"Krum needs --buffer-size > 2f + 2 (K = {buffer_size}, f = {self.byzantine})"
            )
        if clip_iterations < 1:
            raise ValueError("centered clipping needs at least one iteration")
        self.rule = rule
        self.clip_iterations = clip_iterations
        self._center: Weights | None = None
        self.trust = TrajectoryTrust()
        self.buffer_size = buffer_size
        self.server_lr = server_lr
        self.staleness = staleness
        self.trim_fraction = trim_fraction
        self._rows: Weights | None = None
        self._count = 0
        self.membership = BufferMembership(buffer_size, strict=False)

    def _buffer(self, model: Weights) -> Weights:
        if self._rows is None:
            self._rows = {
                name: np.zeros((self.buffer_size, *x.shape), x.dtype) for name, x in model.items()
            }
        return self._rows

    def aggregate(self, stack: np.ndarray) -> np.ndarray:
        """The coordinate-wise statistic over a (K, ...) stack of deltas."""
        if self.rule == "median":
            return coordinate_median(stack)
        return trimmed_mean(stack, trim_count(stack.shape[0], self.trim_fraction))

    def combine(self, rows: Weights) -> Weights:
        """The buffer's robust aggregate delta, array by array."""
        if self.rule not in WHOLE_VECTOR_RULES:
            return {name: self.aggregate(stack) for name, stack in rows.items()}
        stack = flatten(rows)
        if self.rule == "trajectory":
            vector = self.trust.combine(stack, self.membership.members)
        elif self.rule == "centered-clip":
            vector = centered_clip(stack, self._center_vector(stack.shape[1]), self.clip_iterations)
        else:
            keep = 1 if self.rule == "krum" else stack.shape[0] - self.byzantine
            vector = multi_krum(stack, self.byzantine, keep)
        combined = unflatten(vector, rows)
        if self.rule == "centered-clip":
            self._center = {n: np.array(a, rows[n].dtype) for n, a in combined.items()}
        return combined

    def _center_vector(self, size: int) -> np.ndarray:
        """Centered clipping's center: the last release's aggregate, flattened (0 at first)."""
        if self._center is None:
            return np.zeros(size)
        center: np.ndarray = flatten({n: c[None] for n, c in self._center.items()})[0]
        return center

    def refuse(self, worker_id: str) -> Rejected | None:
        return self.membership.refuse(worker_id)

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        if self.membership.must_wait(contribution.worker_id):
            self.membership.held.append(contribution)
            return StepOutcome(0.0, stepped=False)
        outcome = self._admit(model, contribution)
        if outcome.stepped:
            for held in self.membership.readmissions():
                self._admit(model, held)
        return outcome

    def _admit(self, model: Weights, contribution: Contribution) -> StepOutcome:
        rows = self._buffer(model)
        self.membership.join(contribution.worker_id)
        weight = self.staleness(contribution.staleness)
        slot = slice(self._count, self._count + 1)  # a view even for 0-d arrays
        for name, row in rows.items():
            row[slot] = 0.0
            scaled_add(row[slot], contribution.arrays[name], weight)
        self._count += 1
        if self._count < self.buffer_size:
            return StepOutcome(weight, stepped=False)
        for name, step in self.combine(rows).items():
            scaled_add(model[name], step, self.server_lr)
        self._count = 0
        self.membership.released()
        return StepOutcome(weight, stepped=True)

    def pending(self) -> int:
        return self._count + len(self.membership.held)

    def state(self) -> tuple[Scalars, Weights]:
        arrays = (
            {_ROWS + name: rows[: self._count] for name, rows in self._rows.items()}
            if self._rows and self._count
            else {}
        )
        membership, held = self.membership.state()
        center = {_CENTER + n: c for n, c in (self._center or {}).items()}
        workers, trust = self.trust.state()
        trust = {_TRUST + k: v for k, v in trust.items()}
        scalars = {"count": self._count, "trust_workers": workers, **membership}
        return scalars, {**arrays, **held, **center, **trust}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self._count = int(scalars.get("count", 0))
        self.membership.restore(scalars, arrays)
        self._rows = None
        center = {
            k[len(_CENTER) :]: np.array(v) for k, v in arrays.items() if k.startswith(_CENTER)
        }
        self._center = center or None
        self.trust.restore(
            [str(w) for w in scalars.get("trust_workers", [])],
            {k[len(_TRUST) :]: v for k, v in arrays.items() if k.startswith(_TRUST)},
        )
        saved_rows = {k[len(_ROWS) :]: v for k, v in arrays.items() if k.startswith(_ROWS)}
        if saved_rows and self._count:
            self._rows = {}
            for name, saved in saved_rows.items():
                rows = np.zeros((self.buffer_size, *saved.shape[1:]), saved.dtype)
                rows[: self._count] = saved
                self._rows[name] = rows
