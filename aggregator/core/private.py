"""User-level differential privacy around a strategy: clip, noise each release, account, enforce a
budget.

``PrivateStrategy`` wraps any strategy whose steps have the linear form
model += c * sum_i w_i u_i with 0 <= w_i <= 1 (``Strategy.release_scale``):
FedBuff with unit weights and FedAsync on deltas. Per release it

* clips every update to L2 norm C (so one worker moves the sum by at most C),
* lets each worker into a release at most once (a second update waits, "held",
  for the next release; a third is refused),
* adds N(0, (z C)^2) to the sum, i.e. c * N(0, (z C)^2) to the model,
* charges one ``GaussianEvent(z)`` to each worker in the release, and
* closes (refuses every update) once the next release could exceed the budget.

In ``local`` mode workers clip and noise before sending; the aggregator then
adds nothing and charges each applied update to its worker instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from aggregator.core.membership import BufferMembership
from aggregator.core.reports import PrivacyReport
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from aggregator.core.validation import Rejected
from privacy.accountant import AccountantName, GaussianEvent
from privacy.adaptive import AdaptiveClip, update_noise_multiplier
from privacy.clipping import clip_update
from privacy.noise import (
    add_gaussian_noise,
    generator_state,
    noise_fingerprint,
    restore_generator,
)
from privacy.participation import Budget, ParticipationAccountant, Spent, budget_closure
from schemas.messages import ClientPrivacy
from training.weights import Weights, float_entries

DpMode = Literal["central", "local"]
_INNER = "inner/"


@dataclass(frozen=True)
class PrivacyConfig:
    mode: DpMode
    clip: float
    noise_multiplier: float
    budget: Budget
    accountant: AccountantName = "rdp"
    adaptive: bool = False
    target_quantile: float = 0.5
    clip_learning_rate: float = 0.2
    count_stddev: float = 0.5
    client_clip: bool = False


class PrivateStrategy(Strategy):
    """``inner`` made user-level differentially private (see the module docstring)."""

    def __init__(
        self, inner: Strategy, config: PrivacyConfig, rng: np.random.Generator, *, per_release: int
    ) -> None:
        self.scale = inner.release_scale()
        if self.scale is None or inner.update_kind != "delta":
            raise ValueError(
                f"{inner.name} as configured cannot be made private: it needs deltas and unit "
                f"weights"
            )
        self.inner, self.config, self.rng, self.per_release = inner, config, rng, per_release
        self.name, self.update_kind = inner.name, inner.update_kind
        self.event = GaussianEvent(config.noise_multiplier)
        self.update_multiplier = config.noise_multiplier
        if config.adaptive:
            self.update_multiplier = update_noise_multiplier(
                config.noise_multiplier, config.count_stddev
            )
        self.clipper = AdaptiveClip(
            config.clip, config.target_quantile, config.clip_learning_rate, config.count_stddev
        )
        self.accountant = ParticipationAccountant(
            delta=config.budget.delta, accountant=config.accountant
        )
        self.membership = BufferMembership(per_release)
        self._unclipped = 0
        self._closed: str | None = None
        self._noise_mark: str | None = None
        self._check_budget()

    # -- admission -------------------------------------------------------------
    def refuse(self, worker_id: str) -> Rejected | None:
        if self._closed:
            return Rejected("privacy-budget-spent", self._closed)
        return self.membership.refuse(worker_id)

    def closed(self) -> str | None:
        return self._closed

    @property
    def clip(self) -> float:
        return self.clipper.clip

    # -- applying --------------------------------------------------------------
    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        if self.config.mode == "local":
            return self._add_local(model, contribution)
        if self.membership.must_wait(contribution.worker_id):
            self.membership.held.append(contribution)
            return StepOutcome(0.0, stepped=False)
        return self._admit(model, contribution)

    def _add_local(self, model: Weights, contribution: Contribution) -> StepOutcome:
        # Workers already clipped and noised (local DP); each applied update is one release of its
        # worker's data.
        outcome = self.inner.add(model, contribution)
        self.accountant.record_release(self.event, [contribution.worker_id])
        self._check_budget()
        return outcome

    def _admit(self, model: Weights, contribution: Contribution) -> StepOutcome:
        clipped = clip_update(contribution.arrays, self.clip)
        self.membership.join(contribution.worker_id)
        self._unclipped += int(not clipped.scaled)
        outcome = self.inner.add(model, replace(contribution, arrays=clipped.arrays))
        if outcome.stepped:
            self._release(model)
        return outcome

    def _release(self, model: Weights) -> None:
        """The inner strategy stepped: noise the release, charge its members, adapt C, check the
        budget.
        """
        self._noise_mark = noise_fingerprint(self.rng)
        std = float(self.scale) * self.update_multiplier * self.clip  # type: ignore[arg-type]
        add_gaussian_noise(float_entries(model), std, self.rng)
        self.accountant.record_release(self.event, self.membership.members)
        if self.config.adaptive:
            self.clipper.step(self._unclipped, len(self.membership.members), self.rng)
        self.membership.released()
        self._unclipped = 0
        self._check_budget()
        if not self._closed:
            for held in self.membership.readmissions():
                self._admit(model, held)

    def _check_budget(self) -> None:
        if not self._closed:
            self._closed = budget_closure(self.accountant, self.event, self.config.budget)

    # -- reporting -------------------------------------------------------------
    def spent(self) -> Spent:
        return self.accountant.spent()

    def privacy_report(self) -> PrivacyReport:
        spent = self.spent()
        return PrivacyReport(
            mode=self.config.mode,
            epsilon=spent.epsilon,
            delta=spent.delta,
            target_epsilon=self.config.budget.target_epsilon,
            noise_multiplier=self.config.noise_multiplier,
            clip=self.clip,
            releases=spent.releases,
            max_participations=spent.max_participations,
            workers=spent.workers,
            accountant=self.config.accountant,
            budget_spent=self._closed is not None,
        )

    def client_privacy(self) -> ClientPrivacy | None:
        if self.config.mode == "local":
            return ClientPrivacy(clip=self.clip, noise_multiplier=self.config.noise_multiplier)
        return ClientPrivacy(clip=self.clip) if self.config.client_clip else None

    # -- delegation and checkpointing -----------------------------------------
    def pending(self) -> int:
        return self.inner.pending() + len(self.membership.held)

    def noise_mark(self) -> str | None:
        return self._noise_mark

    def state(self) -> tuple[Scalars, Weights]:
        inner_scalars, inner_arrays = self.inner.state()
        arrays = {_INNER + k: v for k, v in inner_arrays.items()}
        membership, held_arrays = self.membership.state()
        arrays.update(held_arrays)
        scalars = {
            "inner": inner_scalars,
            "dp": {
                "clip": self.clip,
                **membership,
                "unclipped": self._unclipped,
                "closed": self._closed,
                "rng": generator_state(self.rng),
                "accountant": self.accountant.state(),
                "epsilon_spent": self.accountant.epsilon(),
                "delta": self.config.budget.delta,
            },
        }
        return scalars, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self.inner.restore(
            dict(scalars.get("inner", {})),
            {k[len(_INNER) :]: v for k, v in arrays.items() if k.startswith(_INNER)},
        )
        dp = dict(scalars.get("dp", {}))
        if not dp:
            return
        self.clipper.clip = float(dp["clip"])
        self.membership.restore(dp, arrays)
        self._unclipped = int(dp.get("unclipped", 0))
        self._closed = dp.get("closed")
        restore_generator(self.rng, str(dp["rng"]))
        self.accountant.restore(dict(dp.get("accountant", {})))
        self._check_budget()


def restore_strategy(
    strategy: Strategy, scalars: Scalars, arrays: Mapping[str, np.ndarray]
) -> None:
    """Restore a checkpoint, refusing to switch differential privacy on or off in the middle of a
    run.

    Releases made without DP have no guarantee, and a DP run's spending would be
    forgotten without it: either way the epsilon reported afterwards would be false.
    """
    private, recorded = strategy.privacy_report() is not None, "dp" in scalars
    if private != recorded:
        was, now = ("with", "without") if recorded else ("without", "with")
        raise ValueError(
            f"this run was checkpointed {was} --dp and cannot continue {now} it; start a new run "
            f"(another --state-dir)"
        )
    strategy.restore(scalars, arrays)
