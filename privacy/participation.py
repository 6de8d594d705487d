"""User-level accounting over asynchronous releases: each worker is charged for the releases it took
part in.

Asynchronous arrival is not random sampling, so no amplification is claimed:
every release a worker contributed to is one full Gaussian mechanism for that
worker, and releases it did not contribute to cost it nothing (the
participation schedule is assumed independent of the private data; see
docs/privacy.md). The guarantee reported is the worst case over workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from privacy.accountant import AccountantName, GaussianEvent, Ledger, epsilon

#: Epsilons remembered per ledger; a long run creates new ledgers with every release.
CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Budget:
    """A target (epsilon, delta); no target epsilon means accounting without a limit."""

    target_epsilon: float | None
    delta: float

    def allows(self, spent_epsilon: float) -> bool:
        return self.target_epsilon is None or spent_epsilon <= self.target_epsilon


@dataclass(frozen=True)
class Spent:
    """What the worst-off worker has spent so far."""

    epsilon: float
    delta: float
    releases: int
    workers: int
    max_participations: int


class ParticipationAccountant:
    """Per-worker ledgers of released events; epsilon is computed by ``dp-accounting`` and cached
    per ledger.
    """

    def __init__(self, *, delta: float, accountant: AccountantName = "rdp") -> None:
        self.delta = delta
        self.accountant = accountant
        self.releases = 0
        self._ledgers: dict[str, Ledger] = {}
        self._cache: dict[Ledger, float] = {}

    def record_release(self, event: GaussianEvent, participants: Iterable[str]) -> None:
        """One release happened; charge ``event`` to each participant."""
        self.releases += 1
        for worker in set(participants):
            self._ledgers[worker] = self._ledgers.get(worker, Ledger()).add(event)

    def ledger(self, worker: str) -> Ledger:
        return self._ledgers.get(worker, Ledger())

    def epsilon_of(self, ledger: Ledger) -> float:
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()  # old ledgers are never asked about again
        if ledger not in self._cache:
            self._cache[ledger] = epsilon(ledger, self.delta, self.accountant)
        return self._cache[ledger]

    def frontier(self) -> list[Ledger]:
        """The distinct ledgers not dominated by another: the only candidates for the worst case."""
        kept: list[Ledger] = []
        for ledger in sorted(set(self._ledgers.values()), key=Ledger.total, reverse=True):
            if not any(k.dominates(ledger) for k in kept):
                kept.append(ledger)
        return kept

    def epsilon(self) -> float:
        """Worst-case epsilon at ``delta`` over all workers (0 before any release)."""
        return max((self.epsilon_of(ledger) for ledger in self.frontier()), default=0.0)

    def epsilon_after(self, event: GaussianEvent) -> float:
        """The worst case if one more release charged ``event`` to the worst-off worker."""
        candidates = self.frontier() or [Ledger()]
        return max(self.epsilon_of(ledger.add(event)) for ledger in candidates)

    def spent(self) -> Spent:
        return Spent(
            epsilon=self.epsilon(),
            delta=self.delta,
            releases=self.releases,
            workers=len(self._ledgers),
            max_participations=max(
                (ledger.total() for ledger in self._ledgers.values()), default=0
            ),
        )

    def state(self) -> dict[str, Any]:
        """msgpack-safe: the ledgers themselves (epsilon is recomputed, never trusted from disk)."""
        return {
            "releases": self.releases,
            "ledgers": {worker: ledger.to_list() for worker, ledger in self._ledgers.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.releases = int(state.get("releases", 0))
        self._ledgers = {
            w: Ledger.from_list(rows) for w, rows in dict(state.get("ledgers", {})).items()
        }
        self._cache.clear()


def budget_closure(
    accountant: ParticipationAccountant, event: GaussianEvent, budget: Budget
) -> str | None:
    """Why no further release may happen (the next ``event`` would pass the budget), or ``None``."""
    if budget.target_epsilon is None:
        return None
    after = accountant.epsilon_after(event)
    if budget.allows(after):
        return None
    return (
        f"the next release would bring epsilon to {after:.4g} > target "
        f"{budget.target_epsilon:g} (delta {budget.delta:g}); spent {accountant.epsilon():.4g}"
    )
