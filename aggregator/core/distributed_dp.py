"""Accounting of distributed DP under secure aggregation (``--dp distributed``).

The workers add the noise (``secagg.skellam``); the aggregator only counts. Each
committed buffer is one release: its sum of m >= K contributions carries Skellam
noise of variance at least (z D)^2, with D one rounded contribution's L2
sensitivity in integer units. It is accounted as the Gaussian of the same
variance, ``GaussianEvent(z)`` charged once to each contributor, with the same
ledgers, worst-case epsilon and budget as central DP
(``privacy.participation``). The approximation is that of a sum of Skellams by a
Gaussian: the Skellam mechanism's own RDP bound (Agarwal, Kairouz, Liu 2021,
Theorem 3.5) adds a term that shrinks as 1/mu, checked in the unit tests. An
aborted buffer releases nothing and is charged nothing; a buffer is never summed
with fewer than K contributions (``secagg.server``), so no release carries less
noise than accounted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aggregator.core.reports import PrivacyReport
from privacy.accountant import AccountantName, GaussianEvent
from privacy.participation import Budget, ParticipationAccountant, budget_closure


@dataclass(frozen=True)
class DistributedConfig:
    """Noise multiplier z on the clip C for sums of at least ``min_contributors`` (K)."""

    noise_multiplier: float
    clip: float
    min_contributors: int
    budget: Budget
    accountant: AccountantName = "rdp"

    def __post_init__(self) -> None:
        if not self.noise_multiplier > 0:
            raise ValueError("distributed DP needs a noise multiplier above 0")
        if self.min_contributors < 2:
            raise ValueError("distributed DP needs buffers of at least 2 contributions")


class DistributedPrivacy:
    """Ledgers of the released buffers; closes once the next one could pass the budget."""

    def __init__(self, config: DistributedConfig) -> None:
        self.config = config
        self.event = GaussianEvent(config.noise_multiplier)
        self.accountant = ParticipationAccountant(
            delta=config.budget.delta, accountant=config.accountant
        )
        self._closed: str | None = None
        self._check_budget()

    def charge(self, contributors: Collection[str]) -> None:
        """A buffer's sum was released: one ``GaussianEvent(z)`` for each contributor."""
        if len(set(contributors)) < self.config.min_contributors:
            raise ValueError(
                f"a release of {len(set(contributors))} contributions carries less noise than "
                f"accounted (K = {self.config.min_contributors})"
            )
        self.accountant.record_release(self.event, contributors)
        self._check_budget()

    def closed(self) -> str | None:
        return self._closed

    def _check_budget(self) -> None:
        if not self._closed:
            self._closed = budget_closure(self.accountant, self.event, self.config.budget)

    def report(self) -> PrivacyReport:
        spent = self.accountant.spent()
        return PrivacyReport(
            mode="distributed",
            epsilon=spent.epsilon,
            delta=spent.delta,
            target_epsilon=self.config.budget.target_epsilon,
            noise_multiplier=self.config.noise_multiplier,
            clip=self.config.clip,
            releases=spent.releases,
            max_participations=spent.max_participations,
            workers=spent.workers,
            accountant=self.config.accountant,
            budget_spent=self._closed is not None,
        )

    def state(self) -> dict[str, Any]:
        """msgpack-safe; epsilon is recomputed from the ledgers on restore, never read back."""
        return {
            "mode": "distributed",
            "closed": self._closed,
            "accountant": self.accountant.state(),
            "epsilon_spent": self.accountant.epsilon(),
            "delta": self.config.budget.delta,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("mode") != "distributed":
            raise ValueError("this run was checkpointed with another --dp mode")
        self._closed = state.get("closed")
        self.accountant.restore(dict(state.get("accountant", {})))
        self._check_budget()
