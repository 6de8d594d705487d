"""The aggregator's functional core: one update in, one typed outcome out.

No broker, no clock, no disk: the service loop feeds decoded updates in and
decides what to persist, publish and acknowledge from the outcomes.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import numpy as np

from aggregator.core.examples import ExampleCap
from aggregator.core.identity import IdentityPolicy, check_claim, check_sender
from aggregator.core.norm_bound import NormBound, Screened
from aggregator.core.state import AggregatorState
from aggregator.core.strategy import Contribution, Strategy
from aggregator.core.validation import Accepted, Rejected, validate_update
from schemas.compression import expand
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate, Compression


class NonFiniteModel(RuntimeError):
    """The model holds NaN or infinity: a bug or an unscreened path, never to be published."""


@dataclass(frozen=True)
class Applied:
    """The update changed the strategy (and, if ``stepped``, produced ``version``)."""

    update_id: str
    worker_id: str
    base_version: int
    staleness: int
    weight: float
    version: int
    stepped: bool
    train_seconds: float = 0.0
    #: Why it was taken at weight 0 (its worker is excluded), else ``None``.
    excluded: str | None = None


@dataclass(frozen=True)
class Duplicate:
    """Already applied (a redelivery or a retried publish): acknowledge, do nothing."""

    update_id: str


Outcome = Applied | Duplicate | Rejected


class Aggregator:
    """Validates, deduplicates and applies updates to the state with a strategy."""

    def __init__(
        self,
        state: AggregatorState,
        strategy: Strategy,
        *,
        max_staleness: int | None,
        identity: IdentityPolicy = IdentityPolicy(),
        norm_bound: NormBound | None = None,
        examples: ExampleCap | None = None,
        compression: Compression | None = None,
    ) -> None:
        self.compression = compression or Compression()
        self.state = state
        self.strategy = strategy
        self.max_staleness = max_staleness
        self.identity = identity
        self.norm_bound = norm_bound
        self.examples = examples

    def admit(self, sender: str | None) -> Rejected | None:
        """Before decoding: refuse (and count) a sender the identity policy does not accept."""
        refused = check_sender(self.identity, sender)
        return self.reject(refused) if refused else None

    def handle(self, update: ClientUpdate, *, sender: str | None = None) -> Outcome:
        """Apply ``update`` (sent by the broker-validated user ``sender``) unless refused, a
        duplicate or invalid.
        """
        state = self.state
        refused = check_sender(self.identity, sender) or check_claim(
            self.identity, sender, update.worker_id
        )
        if refused:
            return self.reject(refused)
        if update.update_id in state.applied:
            state.counters.duplicates += 1
            return Duplicate(update.update_id)
        dense = self._above_floor(update) or self._expand(update)
        if isinstance(dense, Rejected):
            return self.reject(dense)
        update = dense
        verdict = validate_update(
            update,
            model=state.weights,
            version=state.version,
            expected_kind=self.strategy.update_kind,
            max_staleness=self.max_staleness,
        )
        if isinstance(verdict, Rejected):
            return self.reject(verdict)
        screened = (
            self.norm_bound.screen(
                update.arrays, state.weights, update.update_kind, update.worker_id
            )
            if self.norm_bound
            else None
        )
        if isinstance(screened, Rejected):
            return self.reject(screened)
        # Last, so a strategy counting arrivals (robust FedBuff) only ever sees valid updates.
        refusal = self.strategy.refuse(update.worker_id)
        if refusal is not None:
            return self.reject(refusal)
        return self._apply(update, verdict, screened)

    def _above_floor(self, update: ClientUpdate) -> Rejected | None:
        floor = self.state.applied.floor
        if update.base_version <= floor:  # its original may have been forgotten
            return Rejected(
                "too-stale",
                f"base version {update.base_version} is at or below the de-duplication floor "
                f"{floor}",
            )
        return None

    def _expand(self, update: ClientUpdate) -> ClientUpdate | Rejected:
        """The update with dense arrays in the model's dtypes, if its encoding is the one asked."""
        mode = self.compression.mode
        if update.compression != mode:
            return Rejected("wrong-compression", f"sent {update.compression}, expected {mode}")
        if mode == "none" and not update.scales:
            return update
        try:
            arrays = expand(
                update.arrays,
                update.scales,
                mode=mode,
                model=self.state.weights,
                fraction=self.compression.topk_fraction,
            )
        except DecodeError as exc:
            return Rejected(exc.reason, exc.detail)
        return update.model_copy(update={"arrays": arrays, "compression": "none", "scales": {}})

    def close_round(self, active: Set[str]) -> bool:
        """Let a round-based strategy step, ``active`` being the live workers; True if it did."""
        if not self.strategy.close_round(self.state.weights, active):
            return False
        self.state.version += 1
        return True

    def begin_commit(self) -> int:
        """Number the batch about to be persisted (audit lines of later commits are voided on
        restart).
        """
        self.state.commit += 1
        return self.state.commit

    def record_elapsed(self, seconds: float) -> None:
        """Training seconds so far, across restarts (persisted with the state)."""
        self.state.elapsed = seconds

    def count_published(self) -> None:
        self.state.counters.published += 1

    def finish(self, reason: str) -> None:
        """Take no more updates: the run is over (and why)."""
        self.state.finished = True
        self.state.extra["stopped_because"] = reason

    @property
    def stopped_because(self) -> str:
        """Why a finished run stopped (empty while it runs)."""
        return (
            str(self.state.extra.get("stopped_because", "finished")) if self.state.finished else ""
        )

    def reject(self, rejected: Rejected) -> Rejected:
        """Count a rejection (also for messages that never decoded)."""
        self.state.counters.rejected[rejected.reason] += 1
        return rejected

    def check_publishable(self) -> None:
        """``NonFiniteModel`` unless every float entry of the model is finite: such a version is
        never persisted nor published (the strategies' screens should make this unreachable).
        """
        bad = [
            n
            for n, x in self.state.weights.items()
            if x.dtype.kind == "f" and not np.isfinite(x).all()
        ]
        if bad:
            raise NonFiniteModel(
                f"version {self.state.version} would hold NaN or infinity in {', '.join(bad)}; "
                "not persisted, not published"
            )

    def _apply(
        self, update: ClientUpdate, verdict: Accepted, screened: Screened | None
    ) -> Applied | Rejected:
        contribution = Contribution(
            update_id=update.update_id,
            worker_id=update.worker_id,
            staleness=verdict.staleness,
            num_examples=(
                self.examples.allowed(update.num_examples) if self.examples else update.num_examples
            ),
            arrays=screened.arrays if screened else update.arrays,
        )
        refused = self.strategy.screen(self.state.weights, contribution)
        if refused is not None:
            return self.reject(refused)
        outcome = self.strategy.add(self.state.weights, contribution)
        # Only applied updates calibrate the defences: refused ones are the attacker's to choose,
        # and so are those of an excluded worker.
        admitted = outcome.excluded is None
        if self.norm_bound and screened and admitted:
            self.norm_bound.admit(update.worker_id, screened)
        if self.examples and admitted:
            self.examples.admit(update.worker_id, update.num_examples)
        if outcome.stepped:
            self.state.version += 1
        self.state.applied.add(update.update_id, update.base_version)
        self.state.counters.applied += 1
        return Applied(
            update_id=update.update_id,
            worker_id=update.worker_id,
            base_version=update.base_version,
            staleness=verdict.staleness,
            weight=outcome.weight,
            version=self.state.version,
            stepped=outcome.stepped,
            train_seconds=update.train_seconds,
            excluded=outcome.excluded,
        )
