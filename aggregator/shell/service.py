"""The aggregator's service loop: the imperative shell around ``aggregator.core``.

Per batch of deliveries: decode and apply (core) -> persist (checkpoint) ->
publish the new version (confirmed) -> dead-letter rejects (confirmed) -> ack
(``aggregator.shell.intake``). Around it: model requests, synchronous rounds,
the roster, evaluation and reports, stop rules and the run's final artefacts.
"""

from __future__ import annotations

import logging
import threading

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator
from aggregator.core.reports import Progress
from aggregator.core.status import RunIdentity
from aggregator.core.stopping import StopRules
from aggregator.core.tracker import RunSummary, RunTracker
from aggregator.factory import (
    build_core,
    build_strategy,
    check_noise_fits,
    check_release_size,
    check_secure_message_size,
    train_config,
)
from aggregator.settings import AggregatorSettings
from aggregator.shell.artefacts import SUMMARY_KEY, save_artefacts
from aggregator.shell.clock import RunClock
from aggregator.shell.failpoints import Failpoints
from aggregator.shell.intake import Intake, auto_prefetch, chosen_prefetch
from aggregator.shell.isolation import ResultsConsumer
from aggregator.shell.lease import hold_federation
from aggregator.shell.observer import NullObserver, Observer
from aggregator.shell.publisher import Publisher
from aggregator.shell.reporter import Reporter
from aggregator.shell.requests import ModelRequests
from aggregator.shell.roster import RosterWatcher
from aggregator.shell.rounds import RoundControl
from aggregator.shell.secure_rounds import SecureRounds, lowest, secure_rounds_for
from aggregator.shell.spool import Spool
from aggregator.shell.store import StateStore
from broker.connection import AmqpSession
from broker.errors import BrokerError
from broker.names import Names
from broker.reconnect import serve_attached
from broker.topology import ensure_topology
from runtime.eventlog import EventLog
from schemas.codec import Limits
from training.trainer import Trainer

log = logging.getLogger("fedmq.aggregator")

POLL_SECONDS = 0.05
#: How long the end of a run waits for the results queue to empty (workers stop at the final model).
DRAIN_SECONDS = 10.0

__all__ = ["AggregatorService", "RunSummary", "auto_prefetch"]


def attach_topology(session: AmqpSession, names: Names, stop: threading.Event) -> bool:
    """Declare the shared topology (or only check it: see broker.permissions), saying so loudly if
    the results queue is from before single-active-consumer; then take the federation's lease
    (False: stopped while another aggregator held it).
    """
    if not ensure_topology(session, names):
        log.warning(
            "the results queue %s predates single-active-consumer: only the state directory's "
            "lock keeps a second aggregator out (to upgrade, see docs/reliability.md)",
            names.results_queue,
        )
    return hold_federation(session, names, stop)


class AggregatorService:
    """Consume updates, apply them, publish versions, until a stop condition or a signal."""

    def __init__(
        self,
        settings: AggregatorSettings,
        trainer: Trainer,
        *,
        stop: threading.Event | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.settings, self.trainer = settings, trainer
        self.stop = stop or threading.Event()
        self.observer = observer or NullObserver()
        self.names = Names(settings.namespace)
        self.strategy = build_strategy(settings)
        self.store = StateStore(
            settings.state_path, enabled=settings.checkpoint, applied_window=settings.applied_window
        )
        self.roster = RosterWatcher(settings.identity_mode(), settings.roster_file)
        check_release_size(settings, self.roster.policy().roster)
        self.core = build_core(
            settings,
            self.store.restore(self.strategy, trainer.initial_weights),
            self.strategy,
            self.roster.policy(),
        )
        check_secure_message_size(settings, self.core.state.weights)
        check_noise_fits(settings, self.core.state.weights)
        self.prefetch = chosen_prefetch(settings, self.core.state.weights)
        self.stop_rules = StopRules(
            settings.max_versions, settings.max_seconds, settings.target_accuracy
        )
        self._stopped_because = ""
        self._session = AmqpSession(settings, name="fedmq-aggregator")
        self._wire(settings)

    def _wire(self, settings: AggregatorSettings) -> None:
        """Build the collaborators that share the session, the logs, the clock and the tracker."""
        self.limits = Limits(max_message_bytes=settings.max_message_bytes)
        self.audit = EventLog(settings.run_path / "audit.jsonl")
        self.metrics = EventLog(settings.run_path / "metrics.jsonl")
        self.clock = RunClock(self.core.state.elapsed)
        state = self.core.state
        self.tracker = RunTracker(version_at_start=state.version, started=self.clock.now())
        self.active = ActiveWorkers(settings.worker_timeout)
        keep_across_restarts(self.store, self.core, self.active, self.clock)
        self.publisher = Publisher(
            self._session,
            self.names,
            self.core,
            audit=self.audit,
            observer=self.observer,
            # per version: a DP clip may adapt
            config=lambda: train_config(settings, self.strategy),
            max_message_bytes=settings.max_message_bytes,
            audit_digests=settings.audit_digests,
        )
        self.requests = ModelRequests(
            self._session, self.publisher, active=self.active, limits=self.limits, clock=self.clock
        )
        self._wire_intake(settings)
        self._wire_reporter(settings)

    def _wire_intake(self, settings: AggregatorSettings) -> None:
        self.intake = Intake(
            self._session,
            self.core,
            limits=self.limits,
            max_batch=settings.max_batch or self.prefetch,
            store=self.store,
            publisher=self.publisher,
            tracker=self.tracker,
            audit=self.audit,
            observer=self.observer,
            active=self.active,
            failpoints=Failpoints(settings.failpoint),
            clock=self.clock,
            unanswered_below=lambda: lowest(self.requests.lowest_tag(), self.secure.lowest_tag()),
            spool=Spool.for_settings(settings),
            max_versions=settings.max_versions,
        )
        self.results = ResultsConsumer(
            self._session, self.names.results_queue, self.intake.receive, prefetch=self.prefetch
        )
        rounds = RoundControl(
            self.core,
            active=self.active,
            store=self.store,
            publisher=self.publisher,
            tracker=self.tracker,
            clock=self.clock,
            audit=self.audit,
            failpoints=self.intake.failpoints,  # one count for batches and rounds
        )
        self.secure = secure_rounds_for(self.strategy, rounds, self._session, self.audit, settings)
        self.rounds = self.secure if isinstance(self.secure, SecureRounds) else rounds

    def _wire_reporter(self, settings: AggregatorSettings) -> None:
        self.reporter = Reporter(
            self.core,
            self.trainer,
            config=train_config(settings, self.strategy),
            tracker=self.tracker,
            observer=self.observer,
            publisher=self.publisher,
            metrics=self.metrics,
            clock=self.clock,
            run=RunIdentity(self.core.state.run_id, self.strategy.name, settings.num_partitions),
            eval_every=settings.eval_every,
            interval=settings.progress_interval,
        )

    # -- lifecycle -------------------------------------------------------------
    def run(self) -> RunSummary:
        """Serve until a stop condition (then publish the final model) or a signal."""
        state = self.core.state
        self.audit.write("start", run_id=state.run_id, version=state.version, commit=state.commit)
        try:
            serve_attached(
                self._session,
                self._attach,
                self._serve_until_done,
                stop=self.stop,
                backoff_max=self.settings.connect_backoff_max,
                on_outage=self._on_outage,
            )
        finally:
            self._session.close()
            self.audit.close()
            self.metrics.close()
        return self.summary()

    def _on_outage(self, exc: BrokerError, delay: float) -> None:
        self.intake.clear()  # their delivery tags died with the channel; the broker redelivers them
        self.requests.clear()
        self.secure.clear()
        log.warning("lost the broker (%s); reconnecting in %.1fs", exc, delay)

    def _attach(self) -> None:
        self._session.open()
        if not attach_topology(self._session, self.names, self.stop):
            return  # stopped while another aggregator held the federation
        self.results.start()  # leaves the channel's prefetch at self.prefetch for the next one
        self._session.consume(self.names.requests_queue, self.requests.receive)
        self.secure.consume()
        _log_attached(self)
        self.publisher.publish_on_attach()
        self.secure.resume()

    def _serve_until_done(self) -> bool:
        """Serve, then finish if a stop condition was met (again after an outage mid-finish)."""
        if self.core.state.finished or self._serve():
            self._finish()
            return True
        return False

    def _serve(self) -> bool:
        """Returns True when a stop condition is met, False when stopped by a signal."""
        if self.tracker.last_eval is None:
            self.reporter.evaluate()
        while not self.stop.is_set():
            self._session.process_events(0 if self.intake.inbox else POLL_SECONDS)
            self.intake.sweep(self.results)
            self.roster.refresh(self.core)
            for _ in range(self.intake.batches_waiting()):  # not those that come meanwhile
                version_before = self.core.state.version
                self.results.settled(self.intake.handle_batch())
                self.reporter.evaluate_if_due(version_before)
            if self.requests.pending:
                self.requests.answer()
            if self.rounds.close():
                self.reporter.evaluate_if_due(self.core.state.version - 1)
            self.reporter.tick()
            if self._should_stop():
                return True
        self._stopped_because = "signal"
        return False

    def _should_stop(self) -> bool:
        reason = self.stop_rules.reason(
            version=self.core.state.version,
            elapsed=self.clock.elapsed(),
            accuracy=self.tracker.metric("accuracy"),
            closed=self.strategy.closed(),
        )
        self._stopped_because = reason or ""
        return reason is not None

    def _finish(self) -> None:
        """Evaluate, persist as finished, publish the final model, save it and the summary."""
        state = self.core.state
        just_finished = not state.finished
        if just_finished:
            self.reporter.evaluate()
            self.core.finish(self._stopped_because)
            state.extra[SUMMARY_KEY] = self.summary().as_dict()  # persisted with the end
            self.store.persist(self.core, self.clock.elapsed())
        self._stopped_because = self._stopped_because or self.core.stopped_because
        self.publisher.publish_version(final=True)
        self.intake.drain(self.names.results_queue, seconds=DRAIN_SECONDS)  # acked, after-final
        self.reporter.publish_status(self.reporter.progress(), self._stopped_because)
        summary = state.extra.get(SUMMARY_KEY)
        save_artefacts(
            self.settings.run_path,
            state.weights,
            summary if isinstance(summary, dict) else self.summary().as_dict(),
            replace=just_finished,
        )
        log.info(
            "finished run %s at version %d: %s",
            self.core.state.run_id,
            self.core.state.version,
            self._stopped_because,
        )

    # -- reports -----------------------------------------------------------------
    def progress(self) -> Progress:
        """The run's progress now (what a progress line, the metrics log and status show)."""
        return self.reporter.progress()

    def summary(self) -> RunSummary:
        return self.reporter.summary(self._stopped_because)


def _log_attached(service: AggregatorService) -> None:
    log.info(
        "aggregator run %s connected to %s at %s (namespace %s): %s, version %d, prefetch %d",
        service.core.state.run_id,
        service._session.server_product,
        service.settings.masked_url(),
        service.settings.namespace,
        service.strategy.name,
        service.core.state.version,
        service.prefetch,
    )


def keep_across_restarts(
    store: StateStore, core: Aggregator, active: ActiveWorkers, clock: RunClock
) -> None:
    """Checkpoint, beside model and strategy, the active workers and the defences' votes."""
    store.section(
        "active_workers",
        lambda: active.snapshot(clock.now()),
        lambda ages: active.restore(ages, clock.now()),
    )
    bound = core.norm_bound
    if bound is not None:
        store.section("norm_bound", bound.state, bound.restore)
    examples = core.examples
    if examples is not None:
        store.section("example_cap", examples.state, examples.restore)
