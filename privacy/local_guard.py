"""A worker's own terms for local DP: the least noise it accepts, and its own budget.

In ``--dp local`` the aggregator tells workers how to clip and noise, so an
aggregator that sends ``noise_multiplier = 0`` (or no privacy at all) would
receive raw deltas: the party local DP protects against would control it.
A worker with a floor refuses to train on a configuration below it, and one
with a budget keeps its own ledger (one Gaussian event of multiplier z per
update it sends: a clipped, noised delta of all its data) and stops before
an update would take it over the budget. The ledger lives in a file, so a
restarted worker remembers what it spent.
"""

from __future__ import annotations

from dataclasses import dataclass

from privacy.accountant import GaussianEvent, epsilon
from privacy.spending import Spending
from schemas.messages import TrainConfig


@dataclass(frozen=True)
class Refusal:
    """Why a worker will not train; ``final`` when it never will again (its budget is spent)."""

    reason: str
    final: bool = False


class LocalGuard:
    """Checks each configuration before training; charges each update before it is made."""

    def __init__(
        self,
        *,
        min_noise: float | None = None,
        budget: float | None = None,
        spending: Spending | None = None,
    ) -> None:
        if budget is not None and spending is None:
            raise ValueError("a local privacy budget needs a ledger to charge")
        self.min_noise = min_noise
        self.budget = budget
        self.spending = spending

    @property
    def active(self) -> bool:
        return self.min_noise is not None or self.budget is not None

    def refusal(self, config: TrainConfig) -> Refusal | None:
        """Why this worker will not train under ``config``, or ``None``."""
        if not self.active:
            return None
        privacy = config.privacy
        z = 0.0 if privacy is None or config.update_kind != "delta" else privacy.noise_multiplier
        floor = self.min_noise or 0.0
        if z <= 0.0 or z < floor:
            return Refusal(
                f"the model asks for local noise multiplier {z:g}, below this worker's floor "
                f"{floor:g} (--local-dp-min-noise)"
            )
        return self.budget_refusal(z)

    def budget_refusal(self, z: float) -> Refusal | None:
        """Why one more update at multiplier ``z`` would exceed the budget, or ``None``."""
        if self.budget is None or self.spending is None:
            return None
        spending = self.spending
        after = epsilon(spending.ledger.add(GaussianEvent(z)), spending.delta, spending.accountant)
        if after > self.budget:
            return Refusal(
                f"one more update would bring this worker's epsilon to {after:.4g} > its budget "
                f"{self.budget:g} (spent {spending.epsilon():.4g})",
                final=True,
            )
        return None

    def charge(self, config: TrainConfig) -> float | None:
        """Record the update about to be made under ``config``; the epsilon spent, if accounted."""
        privacy = config.privacy
        if self.spending is None or privacy is None or privacy.noise_multiplier <= 0:
            return None  # no local noise: nothing this worker's ledger can account
        return self.spending.charge(GaussianEvent(privacy.noise_multiplier))


def local_guard(
    *, min_noise: float | None, budget: float | None, delta: float, ledger: str | None
) -> LocalGuard:
    """The guard a worker's settings ask for (a ledger file is read now, if it exists)."""
    spending = Spending(delta=delta, path=ledger) if ledger or budget is not None else None
    return LocalGuard(min_noise=min_noise, budget=budget, spending=spending)
