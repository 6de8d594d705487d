"""What the aggregator says about its run: evaluations, progress lines, metrics, status reports."""

from __future__ import annotations

import logging

from aggregator.core.aggregator import Aggregator
from aggregator.core.reports import Progress
from aggregator.core.status import RunIdentity, build_status
from aggregator.core.tracker import RunSummary, RunTracker, progress_line
from aggregator.shell.clock import RunClock
from aggregator.shell.observer import Observer
from aggregator.shell.publisher import Publisher
from runtime.eventlog import EventLog
from schemas.messages import TrainConfig
from schemas.status import encode_status
from training.trainer import Trainer

log = logging.getLogger("fedmq.aggregator")


class Reporter:
    """Evaluates every ``eval_every`` versions and reports every ``interval`` seconds."""

    def __init__(
        self,
        core: Aggregator,
        trainer: Trainer,
        *,
        config: TrainConfig,
        tracker: RunTracker,
        observer: Observer,
        publisher: Publisher,
        metrics: EventLog,
        clock: RunClock,
        run: RunIdentity,
        eval_every: int,
        interval: float,
    ) -> None:
        self.core, self.trainer, self.config = core, trainer, config
        self.tracker, self.observer, self.publisher = tracker, observer, publisher
        self.metrics, self.clock, self.run = metrics, clock, run
        self.eval_every, self.interval = eval_every, interval
        self._last_tick = 0.0

    def evaluate(self) -> None:
        """Test the current version (once per version), and log and observe the result."""
        state = self.core.state
        if self.tracker.last_eval_version == state.version:
            return
        result = self.trainer.evaluate(dict(state.weights), self.config)
        self.tracker.evaluated(state.version, result)
        self.observer.evaluated(state.version, result.loss, result.metrics)
        self.metrics.write(
            "eval",
            version=state.version,
            elapsed=round(self.clock.elapsed(), 4),
            loss=result.loss,
            applied=state.counters.applied,
            **dict(result.metrics),
        )

    def evaluate_if_due(self, version_before: int) -> None:
        """Evaluate if the version crossed a multiple of ``eval_every`` since ``version_before``."""
        if self.core.state.version // self.eval_every != version_before // self.eval_every:
            self.evaluate()

    def tick(self, stopped_because: str = "") -> None:
        """Once per interval: a progress line, a metrics record, the observer, a status report."""
        now = self.clock.now()
        if now - self._last_tick < self.interval:
            return
        self._last_tick = now
        progress = self.progress()
        self.metrics.write("progress", **progress.as_record())
        self.observer.progress(progress)
        self.publish_status(progress, stopped_because)
        log.info("%s", progress_line(progress))

    def progress(self) -> Progress:
        return self.tracker.progress(
            self.core.state,
            pending=self.core.strategy.pending(),
            elapsed=self.clock.elapsed(),
            now=self.clock.now(),
            wall=self.clock.wall(),
            privacy=self.core.strategy.privacy_report(),
        )

    def publish_status(self, progress: Progress, stopped_because: str = "") -> None:
        state = self.core.state
        run = RunIdentity(
            self.run.run_id,
            self.run.strategy,
            self.run.num_partitions,
            finished=state.finished,
            stopped_because=stopped_because,
        )
        report = build_status(
            progress,
            run,
            now=self.clock.wall(),
            rejected=state.counters.rejected,
            staleness_histogram=self.tracker.staleness.histogram,
            workers=self.tracker.workers,
            eval_version=self.tracker.last_eval_version,
        )
        self.publisher.publish_status(encode_status(report))

    def summary(self, stopped_because: str) -> RunSummary:
        return self.tracker.summary(
            self.core.state,
            elapsed=self.clock.elapsed(),
            now=self.clock.now(),
            stopped_because=stopped_because,
            privacy=self.core.strategy.privacy_report(),
        )
