"""What a run reports about itself: typed, from the core to every reader (log, status, metrics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Scalar = int | float | str | bool | None


@dataclass(frozen=True)
class PrivacyReport:
    """What user-level differential privacy has spent so far, and how it is configured."""

    mode: Literal["central", "local", "distributed"]
    epsilon: float
    delta: float
    target_epsilon: float | None
    noise_multiplier: float
    clip: float
    releases: int
    max_participations: int
    workers: int
    accountant: str
    budget_spent: bool

    def as_dict(self) -> dict[str, Scalar]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """One moment of a run: a progress line, a metrics record, a status report, gauges."""

    version: int
    elapsed: float
    updates_per_s: float
    versions_per_s: float
    staleness_mean: float
    staleness_max: int
    applied: int
    rejected: int
    duplicates: int
    pending: int
    workers: int
    accuracy: float | None
    loss: float | None
    privacy: PrivacyReport | None = None

    def as_record(self) -> dict[str, Scalar]:
        """Flat fields for the metrics log (``epsilon``, ``delta``, ``dp_clip`` once DP is on)."""
        record: dict[str, Scalar] = {k: v for k, v in asdict(self).items() if k != "privacy"}
        if self.privacy is not None:
            record.update(
                epsilon=self.privacy.epsilon, delta=self.privacy.delta, dp_clip=self.privacy.clip
            )
        return record
