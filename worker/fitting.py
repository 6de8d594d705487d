"""Local training off the I/O thread: when to train on which version, and the update it yields."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from runtime.background import BackgroundTask
from runtime.eventlog import EventLog
from schemas.codec import encode
from schemas.messages import ClientUpdate, ModelVersion
from training.trainer import Trainer
from worker.update import build_update

log = logging.getLogger("fedmq.worker")

#: Waiting for a fresher model is worth at most this share of a fit.
FRESH_WAIT_SHARE = 0.5


@dataclass(frozen=True)
class DeviceProfile:
    """Emulate a slow device: ``delay`` seconds plus ``slowdown`` times the real fit time."""

    delay: float = 0.0
    slowdown: float = 1.0


@dataclass
class Fitting:
    """At most one fit at a time, on a background thread; each version trained once when fresh."""

    worker_id: str
    events: EventLog
    device: DeviceProfile = DeviceProfile()
    fresh_wait_limit: float = 0.05
    task: BackgroundTask[tuple[ClientUpdate, bytes]] | None = None
    base: int | None = None
    last_base: int | None = None
    sent_at: float = 0.0
    last_fit_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: Top-k error feedback: what earlier updates left unsent (touched only by the training thread).
    residual: dict[str, np.ndarray] = field(default_factory=dict)

    def fresh_wait(self) -> float:
        return min(self.fresh_wait_limit, FRESH_WAIT_SHARE * self.last_fit_seconds)

    def poll_seconds(self, latest: ModelVersion | None, limit: float, *, sending: bool) -> float:
        """Block for I/O at most ``limit``, and no longer than a running fresh-model wait."""
        if self.task is None and not sending and latest is not None:
            if not latest.config.synchronous:
                remaining = self.sent_at + self.fresh_wait() - time.monotonic()
                return min(limit, max(remaining, 0.0))
        return limit

    def should_start(self, latest: ModelVersion, now: float) -> bool:
        """A fresher version is here, or (asynchronous training) the fresh-model wait is over."""
        fresh = self.last_base is None or latest.version > self.last_base
        if fresh:
            return True
        # Synchronous rounds: an update per version is all that counts.
        return not latest.config.synchronous and now - self.sent_at >= self.fresh_wait()

    def start(self, trainer: Trainer, model: ModelVersion, wake: Callable[[], None]) -> None:
        self.base = model.version
        self.events.write("training", base_version=model.version)
        self.task = BackgroundTask(
            lambda: self._train(trainer, model), name=f"fit-v{model.version}", on_done=wake
        ).start()

    def _train(self, trainer: Trainer, model: ModelVersion) -> tuple[ClientUpdate, bytes]:
        """Runs on the training thread: fit, emulate a slow device, build and encode the update."""
        started = time.monotonic()
        fit = trainer.fit(dict(model.arrays), model.config)
        elapsed = time.monotonic() - started
        extra = self.device.delay + (self.device.slowdown - 1.0) * elapsed
        if extra > 0:
            time.sleep(extra)
        update = build_update(
            self.worker_id, model, fit, time.monotonic() - started, residual=self.residual
        )
        return update, encode(update)

    def collect(self) -> tuple[ClientUpdate, bytes] | None:
        """The finished fit's update and body, if a fit finished (a failed fit is logged and
        skipped).
        """
        if self.task is None or not self.task.done():
            return None
        task, self.task = self.task, None
        try:
            update, body = task.result()
        except Exception as exc:  # a trainer bug must not take the worker's connection down
            log.exception("training on version %s failed: %s", self.base, exc)
            self.errors.append(repr(exc))
            self.settled(self.base)
            return None
        self.last_fit_seconds = update.train_seconds
        return update, body

    def settled(self, base_version: int | None) -> None:
        """The update trained from ``base_version`` is out of our hands (confirmed, or given up)."""
        self.last_base, self.sent_at = base_version, time.monotonic()
