"""The strategy contract: how one update changes the global model.

Strategies are pure with respect to I/O: no broker, no clock, no disk. They
change the model arrays they are given in place and keep whatever buffer
state they need, which the aggregator checkpoints through ``state``/``restore``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from aggregator.core.reports import PrivacyReport
from aggregator.core.validation import Rejected
from schemas.messages import ClientPrivacy, UpdateKind
from training.weights import Weights

Scalars = dict[str, Any]


@dataclass(frozen=True)
class Contribution:
    """A validated update, ready to apply."""

    update_id: str
    worker_id: str
    staleness: int
    num_examples: int
    arrays: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class StepOutcome:
    """What applying one contribution did."""

    weight: float
    stepped: bool
    #: Why the contribution was taken at weight 0 (a reputation rule excluded its worker).
    excluded: str | None = None


class Strategy(ABC):
    """Base of every strategy. ``stepped`` means the global model changed (a new version)."""

    name: str
    update_kind: UpdateKind
    #: Round-based: workers train each version at most once and ``close_round`` makes versions.
    synchronous: bool = False
    #: Workers mask their updates and the strategy sees only buffer sums (``TrainConfig``).
    secure_aggregation: bool = False

    @abstractmethod
    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        """Fold ``contribution`` into the strategy (and the model, when it steps)."""

    def state(self) -> tuple[Scalars, Weights]:
        """Scalars and arrays to checkpoint."""
        return {}, {}

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Load what ``state`` returned (a strategy without state has nothing to load)."""

    def pending(self) -> int:
        """Contributions received but not yet reflected in the model."""
        return 0

    def close_round(self, model: Weights, active: Set[str]) -> bool:
        """Round-based strategies step here once ``active`` workers have all contributed."""
        return False

    def refuse(self, worker_id: str) -> Rejected | None:
        """Why a valid update from ``worker_id`` cannot be taken now (e.g. the privacy budget is
        spent).

        Called after validation, just before ``add``.
        """
        return None

    def screen(self, model: Weights, contribution: Contribution) -> Rejected | None:
        """Why ``contribution`` would make the model non-finite if added now, or ``None``.

        Called just before ``add``; nothing has changed yet when it refuses.
        """
        return None

    def closed(self) -> str | None:
        """Why this strategy takes no more updates at all, or ``None``: the service stops when it is
        set.
        """
        return None

    def release_scale(self) -> float | None:
        """c such that every step is model += c * sum_i w_i u_i, with data-independent 0 <= w_i <=
        1.

        That form bounds one contribution's effect on a release by c * ||u_i||,
        which is what user-level DP needs (``aggregator.core.private``); ``None`` if
        this strategy (as configured) does not have it.
        """
        return None

    def noise_mark(self) -> str | None:
        """A fingerprint of the noise draw behind the current version (``None`` without DP noise):
        recorded with each published version, so an audit can see a draw never serves two versions.
        """
        return None

    def privacy_report(self) -> PrivacyReport | None:
        """What differential privacy has spent so far; ``None`` for a strategy without DP."""
        return None

    def client_privacy(self) -> ClientPrivacy | None:
        """What workers must do to a delta before sending it (``TrainConfig.privacy``), if any."""
        return None
