"""The aggregator's service loop: the imperative shell around ``aggregator.core.aggregator``.

Per batch of deliveries: decode and apply (core) -> persist (checkpoint) ->
publish the new version (confirmed) -> dead-letter rejects (confirmed) -> ack.
Because a version is published only after the state that produced it is on
disk, and an update is acked only after that, a crash at any point costs at
most a redelivery, which the update-id window turns into a no-op.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import numpy as np

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator, Applied, Duplicate, Outcome
from aggregator.core.identity import IdentityPolicy
from aggregator.core.private import privacy_report, restore_strategy
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.status import build_status
from aggregator.core.tracker import RunSummary, RunTracker, progress_line
from aggregator.core.validation import Rejected
from aggregator.factory import build_norm_bound, build_strategy, train_config
from aggregator.settings import AggregatorSettings
from aggregator.shell.checkpoint import load_checkpoint, save_checkpoint
from aggregator.shell.failpoints import Failpoints
from aggregator.shell.observer import NullObserver, Observer
from aggregator.shell.publisher import Publisher
from aggregator.shell.roster import RosterFile
from broker.connection import AmqpSession, Delivery
from broker.errors import BrokerError
from broker.names import Names
from broker.reconnect import serve_attached
from broker.topology import declare_status_queue, declare_topology
from runtime.eventlog import EventLog
from schemas.codec import Limits, decode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate, ModelRequest
from schemas.status import encode_status
from training.trainer import Trainer

log = logging.getLogger("fedmq.aggregator")

POLL_SECONDS = 0.05
PREFETCH_BUDGET_BYTES = 64 << 20
MAX_AUTO_PREFETCH = 64

__all__ = ["AggregatorService", "RunSummary", "auto_prefetch"]


def auto_prefetch(weights: dict[str, np.ndarray]) -> int:
    """Unacked updates in flight: as many as fit in a fixed memory budget (1..64)."""
    size = max(sum(a.nbytes for a in weights.values()), 1)
    return max(1, min(MAX_AUTO_PREFETCH, PREFETCH_BUDGET_BYTES // size))


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
        self.settings = settings
        self.trainer = trainer
        self.stop = stop or threading.Event()
        self.observer = observer or NullObserver()
        self.names = Names(settings.namespace)
        self.limits = Limits(max_message_bytes=settings.max_message_bytes)
        self.strategy = build_strategy(settings)
        self.config = train_config(settings, self.strategy)
        self._roster_file = RosterFile(settings.roster_file) if settings.roster_file else None
        self.core = Aggregator(
            self._restore_state(),
            self.strategy,
            max_staleness=settings.max_staleness,
            identity=IdentityPolicy(
                settings.identity, self._roster_file.load() if self._roster_file else None
            ),
            norm_bound=build_norm_bound(settings),
        )
        self.failpoints = Failpoints(settings.failpoint)
        self.prefetch = settings.prefetch or auto_prefetch(self.core.state.weights)
        self.max_batch = settings.max_batch or self.prefetch
        self.audit = EventLog(settings.run_path / "audit.jsonl")
        self.metrics = EventLog(settings.run_path / "metrics.jsonl")
        self._session = AmqpSession(settings, name="fedmq-aggregator")
        self.publisher = Publisher(
            self._session,
            self.names,
            audit=self.audit,
            observer=self.observer,
            config=lambda: train_config(
                settings, self.strategy
            ),  # per version: a DP clip may adapt
            max_message_bytes=settings.max_message_bytes,
            audit_digests=settings.audit_digests,
        )
        self._inbox: list[Delivery] = []
        self._requests: list[Delivery] = []
        self._started = time.monotonic()
        self._elapsed_before = self.core.state.elapsed
        self.tracker = RunTracker(version_at_start=self.core.state.version, started=self._started)
        self._active = ActiveWorkers(settings.worker_timeout)
        self._last_progress = 0.0
        self._stopped_because = ""

    # -- state -----------------------------------------------------------------
    def _restore_state(self) -> AggregatorState:
        if self.settings.checkpoint:
            loaded = load_checkpoint(self.settings.state_path)
            if loaded is not None:
                state, scalars, arrays = loaded
                restore_strategy(self.strategy, scalars, arrays)
                log.info(
                    "resumed run %s at version %d from %s",
                    state.run_id,
                    state.version,
                    self.settings.state_path,
                )
                return state
        weights = {k: np.array(v, copy=True) for k, v in self.trainer.initial_weights().items()}
        return AggregatorState(
            run_id=uuid.uuid4().hex[:12],
            version=0,
            weights=weights,
            applied=AppliedWindow(self.settings.applied_window),
        )

    @property
    def state(self) -> AggregatorState:
        return self.core.state

    def elapsed(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._started)

    def _persist(self) -> None:
        self.state.elapsed = self.elapsed()
        if self.settings.checkpoint:
            save_checkpoint(self.settings.state_path, self.state, self.strategy.state())

    # -- lifecycle -------------------------------------------------------------
    def run(self) -> RunSummary:
        """Serve until a stop condition (then publish the final model) or a signal."""
        self.audit.write(
            "start", run_id=self.state.run_id, version=self.state.version, commit=self.state.commit
        )
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
        self._inbox.clear()  # their delivery tags died with the channel; the broker redelivers them
        self._requests.clear()
        log.warning("lost the broker (%s); reconnecting in %.1fs", exc, delay)

    def _attach(self) -> None:
        self._session.open()
        declare_topology(self._session, self.names)
        declare_status_queue(self._session, self.names)
        self._session.set_prefetch(self.prefetch)
        self._session.consume(self.names.results_queue, self._inbox.append)
        self._session.consume(self.names.requests_queue, self._requests.append)
        log.info(
            "aggregator run %s connected to %s at %s (namespace %s): %s, version %d, prefetch %d",
            self.state.run_id,
            self._session.server_product,
            self.settings.masked_url(),
            self.settings.namespace,
            self.strategy.name,
            self.state.version,
            self.prefetch,
        )
        self.publisher.publish_version(self.state, final=self.state.finished)

    def _serve_until_done(self) -> bool:
        """Serve, then finish if a stop condition was met (again after an outage in the middle of finishing)."""
        if self.state.finished or self._serve():
            self._finish()
            return True
        return False

    def _serve(self) -> bool:
        """Returns True when a stop condition is met, False when stopped by a signal."""
        if self.tracker.last_eval is None:
            self._evaluate()
        while not self.stop.is_set():
            self._session.process_events(POLL_SECONDS)
            self._refresh_roster()
            while self._inbox:
                self._handle_batch()
            if self._requests:
                self._answer_requests()
            self._close_round()
            self._tick()
            if self._should_stop():
                return True
        self._stopped_because = "signal"
        return False

    # -- updates ---------------------------------------------------------------
    def _handle_batch(self) -> None:
        batch, self._inbox[:] = self._inbox[: self.max_batch], self._inbox[self.max_batch :]
        started = time.perf_counter()
        version_before = self.state.version
        outcomes = [(d, self._outcome(d)) for d in batch]
        applied = [o for _, o in outcomes if isinstance(o, Applied)]
        if applied:
            self.state.commit += 1
            for o in applied:
                self._record_applied(o)
            self.failpoints.reached("before-checkpoint")
            self._persist()
            self.failpoints.reached("after-checkpoint")
        if self.state.version != version_before:
            self.tracker.versions(self.state.version - version_before, time.monotonic())
            self.publisher.publish_version(self.state, final=False)
            self.failpoints.reached("after-publish")
        for delivery, outcome in outcomes:
            if isinstance(outcome, Rejected):
                self.publisher.dead_letter(delivery, outcome)
            elif isinstance(outcome, Duplicate):
                self.audit.write("duplicate", update_id=outcome.update_id, commit=self.state.commit)
        self._ack_batch(batch)
        self.observer.handled([o for _, o in outcomes], time.perf_counter() - started)
        if (
            self.state.version // self.settings.eval_every
            != version_before // self.settings.eval_every
        ):
            self._evaluate()

    def _ack_batch(self, batch: list[Delivery]) -> None:
        """One ``multiple`` ack for the batch (pika flushes and polls per ack: ~0.5 ms each).

        Only when no model request with a lower tag still awaits its answer,
        or that request would be acknowledged with the batch.
        """
        last = batch[-1].delivery_tag
        if all(r.delivery_tag > last for r in self._requests):
            self._session.ack(last, multiple=True)
            return
        for delivery in batch:
            self._session.ack(delivery.delivery_tag)

    def _outcome(self, delivery: Delivery) -> Outcome:
        sender = delivery.properties.user_id
        refused = self.core.admit(sender)  # nothing from an unaccepted sender is even decoded
        if refused:
            return refused
        try:
            update = decode(
                delivery.body,
                ClientUpdate,
                content_type=delivery.properties.content_type,
                limits=self.limits,
            )
        except DecodeError as exc:
            return self.core.reject(Rejected(exc.reason, exc.detail))
        outcome = self.core.handle(update, sender=sender)
        if not isinstance(
            outcome, Rejected
        ):  # a refused or forged update says nothing about who is active
            self._active.seen(update.worker_id, time.monotonic())
        return outcome

    def _record_applied(self, o: Applied) -> None:
        self.tracker.applied(o, time.monotonic(), time.time())
        self.audit.write(
            "applied",
            update_id=o.update_id,
            worker_id=o.worker_id,
            base_version=o.base_version,
            staleness=o.staleness,
            weight=round(o.weight, 6),
            version=o.version,
            commit=self.state.commit,
        )

    def _refresh_roster(self) -> None:
        """Pick up workers added or revoked since the roster was last read."""
        if self._roster_file is None:
            return
        try:
            roster = self._roster_file.reload_if_changed()
        except ValueError as exc:
            log.warning(
                "keeping the previous roster: %s is invalid (%s)", self._roster_file.path, exc
            )
            return
        if roster is not None:
            self.core.identity = IdentityPolicy(self.settings.identity, roster)
            log.info(
                "roster: %d active, %d revoked workers", len(roster.active), len(roster.revoked)
            )

    def _close_round(self) -> None:
        """Synchronous strategies: step once every active worker has contributed, then publish."""
        if not self.core.close_round(self._active.active(time.monotonic())):
            return
        self.state.commit += 1
        self.tracker.versions(1, time.monotonic())
        self._persist()
        self.publisher.publish_version(self.state, final=False)
        if self.state.version % self.settings.eval_every == 0:
            self._evaluate()

    def _answer_requests(self) -> None:
        pending, self._requests[:] = list(self._requests), []
        answered: set[str] = set()
        for delivery in pending:
            try:
                request = decode(
                    delivery.body,
                    ModelRequest,
                    content_type=delivery.properties.content_type,
                    limits=self.limits,
                )
            except DecodeError as exc:
                log.info("ignoring an invalid model request: %s", exc)
            else:
                self._active.seen(request.worker_id, time.monotonic())
                if request.worker_id not in answered:
                    answered.add(request.worker_id)
                    self.publisher.send_to_worker(self.state, request.worker_id)
            self._session.ack(delivery.delivery_tag)

    # -- evaluation, progress, stopping ------------------------------------------
    def _evaluate(self) -> None:
        if self.tracker.last_eval_version == self.state.version:
            return
        result = self.trainer.evaluate(dict(self.state.weights), self.config)
        self.tracker.evaluated(self.state.version, result)
        self.observer.evaluated(self.state.version, result.loss, result.metrics)
        self.metrics.write(
            "eval",
            version=self.state.version,
            elapsed=round(self.elapsed(), 4),
            loss=result.loss,
            applied=self.state.counters.applied,
            **{k: v for k, v in result.metrics.items()},
        )

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.settings.progress_interval:
            return
        self._last_progress = now
        fields = self.progress_fields(now)
        self.metrics.write("progress", **fields)
        self.observer.progress(fields)
        self._publish_status(fields)
        log.info("%s", progress_line(fields))

    def progress_fields(self, now: float) -> dict[str, Any]:
        """The numbers of a progress line, the metrics log, the status report and Prometheus."""
        fields = self.tracker.progress_fields(
            self.state,
            pending=self.strategy.pending(),
            elapsed=self.elapsed(),
            now=now,
            wall=time.time(),
        )
        report = privacy_report(self.strategy)
        if report is not None:
            fields.update(epsilon=report["epsilon"], delta=report["delta"], dp_clip=report["clip"])
        return fields

    def _publish_status(self, fields: dict[str, Any]) -> None:
        report = build_status(
            run_id=self.state.run_id,
            strategy=self.strategy.name,
            num_partitions=self.settings.num_partitions,
            now=time.time(),
            fields=fields,
            rejected=self.state.counters.rejected,
            staleness_histogram=self.tracker.staleness.histogram,
            workers=self.tracker.workers,
            eval_version=self.tracker.last_eval_version
            if self.tracker.last_eval is not None
            else None,
            finished=self.state.finished,
            stopped_because=self._stopped_because,
        )
        self.publisher.publish_status(encode_status(report))

    def _should_stop(self) -> bool:
        s = self.settings
        accuracy = self.tracker.metric("accuracy")
        if s.max_versions is not None and self.state.version >= s.max_versions:
            self._stopped_because = f"reached {s.max_versions} versions"
        elif s.max_seconds is not None and self.elapsed() >= s.max_seconds:
            self._stopped_because = f"reached {s.max_seconds:g}s of training"
        elif (
            s.target_accuracy is not None and accuracy is not None and accuracy >= s.target_accuracy
        ):
            self._stopped_because = f"reached target accuracy {s.target_accuracy}"
        elif self.strategy.closed():
            self._stopped_because = f"privacy budget spent: {self.strategy.closed()}"
        return bool(self._stopped_because)

    def _finish(self) -> None:
        """Evaluate, persist as finished, publish the final model, save it and the summary."""
        if not self.state.finished:
            self._evaluate()
            self.state.finished = True
            self.state.extra["stopped_because"] = self._stopped_because
            self._persist()
        self._stopped_because = self._stopped_because or str(
            self.state.extra.get("stopped_because", "finished")
        )
        self.publisher.publish_version(self.state, final=True)
        self._publish_status(self.progress_fields(time.monotonic()))
        run_path = self.settings.run_path
        np.savez(run_path / "final_model.npz", **self.state.weights)
        (run_path / "summary.json").write_text(json.dumps(self.summary().__dict__, indent=2))
        log.info(
            "finished run %s at version %d: %s",
            self.state.run_id,
            self.state.version,
            self._stopped_because,
        )

    def summary(self) -> RunSummary:
        return self.tracker.summary(
            self.state,
            elapsed=self.elapsed(),
            now=time.monotonic(),
            stopped_because=self._stopped_because,
            privacy=privacy_report(self.strategy),
        )
