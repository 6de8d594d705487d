"""Where the aggregator's state lives between processes: restored at start, saved before acks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.private import restore_strategy
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Strategy
from aggregator.shell.checkpoint import load_checkpoint, remove_temporaries, save_checkpoint
from training.weights import Weights

log = logging.getLogger("fedmq.aggregator")


class StateStore:
    """The checkpoint in ``path`` (or nothing, with ``enabled=False``)."""

    def __init__(self, path: Path, *, enabled: bool, applied_window: int) -> None:
        self.path = path
        self.enabled = enabled
        self.applied_window = applied_window
        self._sections: dict[str, Callable[[], object]] = {}
        self._restored: dict[str, object] = {}

    def restore(
        self, strategy: Strategy, initial_weights: Callable[[], Weights]
    ) -> AggregatorState:
        """The checkpointed state (restoring ``strategy`` too), or a fresh run at version 0."""
        if self.enabled:
            remove_temporaries(self.path)
            loaded = load_checkpoint(self.path)
            if loaded is not None:
                state, scalars, arrays = loaded
                try:
                    state.applied = state.applied.resized(self.applied_window)
                except ValueError as exc:
                    raise ValueError(
                        f"--applied-window {self.applied_window} refused for {self.path}: {exc}"
                    ) from None
                restore_strategy(strategy, scalars, arrays)
                self._restored = dict(state.extra)
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

    def section(
        self, name: str, snapshot: Callable[[], object], restore: Callable[[Any], None]
    ) -> None:
        """Checkpoint ``snapshot()`` under ``name`` too; hand the restored one (if any) to
        ``restore`` now.

        For state that lives outside the model and the strategy but must survive a restart
        (the norm bound's calibration, the workers a synchronous round waits for).
        """
        self._sections[name] = snapshot
        if name in self._restored:
            restore(self._restored[name])

    def persist(self, core: Aggregator, elapsed: float) -> None:
        """Record the training time and write the state durably (before anything is published)."""
        core.record_elapsed(elapsed)
        for name, snapshot in self._sections.items():
            core.state.extra[name] = snapshot()
        if self.enabled:
            save_checkpoint(self.path, core.state, core.strategy.state())
