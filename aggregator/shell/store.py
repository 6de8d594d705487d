"""Where the aggregator's state lives between processes: restored at start, saved before acks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.private import restore_strategy
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Strategy
from aggregator.shell.checkpoint import load_checkpoint, save_checkpoint
from training.weights import Weights

log = logging.getLogger("fedmq.aggregator")


class StateStore:
    """The checkpoint in ``path`` (or nothing, with ``enabled=False``)."""

    def __init__(self, path: Path, *, enabled: bool, applied_window: int) -> None:
        self.path = path
        self.enabled = enabled
        self.applied_window = applied_window

    def restore(
        self, strategy: Strategy, initial_weights: Callable[[], Weights]
    ) -> AggregatorState:
        """The checkpointed state (restoring ``strategy`` too), or a fresh run at version 0."""
        if self.enabled:
            loaded = load_checkpoint(self.path)
            if loaded is not None:
                state, scalars, arrays = loaded
                restore_strategy(strategy, scalars, arrays)
                log.info(
                    "resumed run %s at version %d from %s", state.run_id, state.version, self.path
                )
                return state
        weights = {k: np.array(v, copy=True) for k, v in initial_weights().items()}
        return AggregatorState(
            run_id=uuid.uuid4().hex[:12],
            version=0,
            weights=weights,
            applied=AppliedWindow(self.applied_window),
        )

    def persist(self, core: Aggregator, elapsed: float) -> None:
        """Record the training time and write the state durably (before anything is published)."""
        core.record_elapsed(elapsed)
        if self.enabled:
            save_checkpoint(self.path, core.state, core.strategy.state())
