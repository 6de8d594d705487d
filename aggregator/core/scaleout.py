"""Scale-out FedBuff: edge aggregators hold updates, a root decides exactly which form each step.

Updates reach the edges through RabbitMQ's consistent-hash exchange (hashed on
the worker-id header), so each edge sees a share. An edge turns each update
into exact fixed-point terms (``aggregator.core.partial``) and offers its id
to the root; the root publishes a ``StepPlan`` (the next version and the
update ids it contains, first come first planned); each edge answers with the
partial sum of the planned ids it holds; the root combines the answers,
steps, commits, and announces the plan as done, whereupon edges drop (and
ack) those updates. Exactly once across crashes: an edge acks only what a
committed step contains, so a crashed edge is redelivered what it held and
answers the same plan with the same bits; a crashed root resumes from its
checkpoint (version, applied ids) and plans again from fresh offers; an id
already applied or planned is never planned twice. Pure: no broker, no
clock, no disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from aggregator.core.partial import Partial, combine, fixed_terms, step_with
from aggregator.core.staleness import Polynomial, StalenessFunction
from aggregator.core.strategy import Contribution
from training.weights import Weights


@dataclass(frozen=True)
class StepPlan:
    """The step that makes ``version``: exactly these updates, each summed by the edge named
    (an update delivered to two edges, say after a rebalance, is counted by the first to offer
    it)."""

    version: int
    assigned: tuple[tuple[str, frozenset[str]], ...]

    @property
    def update_ids(self) -> frozenset[str]:
        return frozenset().union(*(ids for _, ids in self.assigned))

    def for_edge(self, edge: str) -> frozenset[str]:
        return next((ids for name, ids in self.assigned if name == edge), frozenset())


@dataclass
class Edge:
    """One edge aggregator: the terms of the updates routed to it, until a step commits them."""

    name: str
    staleness: StalenessFunction = field(default_factory=lambda: Polynomial(0.5))
    sample_weighting: bool = True
    _held: dict[str, tuple[dict[str, np.ndarray], int]] = field(default_factory=dict)

    def receive(self, contribution: Contribution) -> bool:
        """Hold a validated update; False if it is already held (a redelivery)."""
        if contribution.update_id in self._held:
            return False
        examples = contribution.num_examples if self.sample_weighting else 1
        weight = self.staleness(contribution.staleness) * examples
        self._held[contribution.update_id] = (fixed_terms(contribution.arrays, weight), examples)
        return True

    def offer(self) -> list[str]:
        """The ids it holds, in arrival order (what it tells the root)."""
        return list(self._held)

    def answer(self, plan: StepPlan) -> Partial:
        """The partial sum of the updates the plan gives it (the same bits every time)."""
        mine = plan.for_edge(self.name)
        missing = mine - self._held.keys()
        if missing:
            raise LookupError(f"edge {self.name} does not hold {sorted(missing)}")
        return Partial.of((uid, terms, n) for uid, (terms, n) in self._held.items() if uid in mine)

    def committed(self, plan: StepPlan) -> list[str]:
        """The root committed ``plan``: forget those updates; the ids to ack."""
        done = [uid for uid in self._held if uid in plan.update_ids]
        for uid in done:
            del self._held[uid]
        return done


@dataclass
class Root:
    """The root aggregator: plans steps of ``buffer_size`` updates and combines the edges' sums."""

    version: int = 0
    buffer_size: int = 10
    server_lr: float = 1.0
    applied: set[str] = field(default_factory=set)
    plan: StepPlan | None = None
    _offered: dict[str, str] = field(default_factory=dict)  # id -> first edge, in offer order
    _answers: dict[str, Partial] = field(default_factory=dict)

    def offered(self, edge: str, ids: Iterable[str]) -> None:
        """``edge`` holds ``ids`` (ids already applied, or offered by another edge, are skipped)."""
        for uid in ids:
            if uid not in self.applied:
                self._offered.setdefault(uid, edge)

    def next_plan(self) -> StepPlan | None:
        """A plan for the next version once ``buffer_size`` updates are on offer (one at a time)."""
        if self.plan is None and len(self._offered) >= self.buffer_size:
            chosen = list(self._offered)[: self.buffer_size]
            edges = sorted({self._offered[uid] for uid in chosen})
            assigned = tuple(
                (e, frozenset(u for u in chosen if self._offered[u] == e)) for e in edges
            )
            self.plan = StepPlan(self.version + 1, assigned)
        return self.plan

    def answered(self, edge: str, partial: Partial) -> None:
        """An edge's partial for the current plan (a repeat replaces its earlier one)."""
        if self.plan is None or partial.update_ids != self.plan.for_edge(edge):
            raise ValueError(f"edge {edge} answered for other updates than the plan gives it")
        self._answers[edge] = partial

    def ready(self) -> bool:
        return self.plan is not None and self._answers.keys() == {e for e, _ in self.plan.assigned}

    def step(self, model: Weights) -> StepPlan:
        """Combine the answers, step ``model`` in place, and commit: the plan to announce."""
        plan = self.plan
        if plan is None or not self.ready():
            raise ValueError("the plan is not fully answered")
        step_with(model, combine(self._answers.values()), self.server_lr)
        self.version = plan.version
        self.applied |= plan.update_ids
        for uid in plan.update_ids:
            self._offered.pop(uid, None)
        self.plan, self._answers = None, {}
        return plan
