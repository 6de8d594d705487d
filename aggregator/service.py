"""The aggregator's service loop: the imperative shell around ``aggregator.core``.

Per batch of deliveries: decode and apply (core) -> persist (checkpoint) ->
publish the new version (confirmed) -> dead-letter rejects (confirmed) -> ack.
Because a version is published only after the state that produced it is on
disk, and an update is acked only after that, a crash at any point costs at
most a redelivery, which the update-id window turns into a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aggregator.checkpoint import load_checkpoint, save_checkpoint
from aggregator.core import Aggregator, Applied, Duplicate, Outcome
from aggregator.activity import ActiveWorkers
from aggregator.factory import build_norm_bound, build_strategy, train_config
from aggregator.failpoints import Failpoints
from aggregator.identity import IdentityPolicy
from aggregator.observer import NullObserver, Observer
from aggregator.private import privacy_report, restore_strategy
from aggregator.progress import RateMeter, StalenessStats, WorkerSeen
from aggregator.roster import RosterFile
from aggregator.settings import AggregatorSettings
from aggregator.state import AggregatorState, AppliedWindow
from aggregator.status import build_status
from aggregator.validation import Rejected
from broker.connection import AmqpSession, Delivery, backoff_delay
from broker.errors import BrokerUnavailable, ConnectionLost, PublishFailed
from broker.names import BROADCAST_KEY, Names, worker_key
from broker.properties import dead_letter_properties, model_properties, status_properties
from broker.topology import declare_status_queue, declare_topology
from fedmq.eventlog import EventLog
from schemas.codec import Limits, decode, encode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate, ModelRequest, ModelVersion
from schemas.status import encode_status
from worker.background import BackgroundTask
from worker.trainer import Trainer

log = logging.getLogger("fedmq.aggregator")

POLL_SECONDS = 0.05
#: Late updates are a normal part of asynchronous training: recorded in the audit log and dropped,
#: not copied to the dead-letter queue. After a restart they can arrive by the thousand; a confirmed
#: dead-letter publish each made rejecting them 5x slower than applying updates (python -m
#: bench.reliability throughput), and they would push out the malformed messages that queue is for.
LATE_REJECTIONS = frozenset({"too-stale"})
PREFETCH_BUDGET_BYTES = 64 << 20
MAX_AUTO_PREFETCH = 64


@dataclass
class RunSummary:
    """What a run achieved; written to ``summary.json`` and printed by ``fedmq demo``."""

    run_id: str
    version: int
    elapsed: float
    stopped_because: str
    accuracy: float | None
    loss: float | None
    applied: int
    duplicates: int
    rejected: dict[str, int]
    staleness_mean: float
    staleness_max: int
    stale_share: float
    updates_per_second: float
    versions_per_second: float
    workers: dict[str, dict[str, float]] = field(default_factory=dict)
    privacy: dict[str, object] | None = None


def digest(weights: dict[str, np.ndarray]) -> str:
    """Short content digest of a model, to prove a version names one set of weights."""
    h = hashlib.sha256()  # twice blake2b's speed where the CPU has SHA extensions
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:32]


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
            identity=IdentityPolicy(settings.identity, self._roster_file.load() if self._roster_file else None),
            norm_bound=build_norm_bound(settings),
        )
        self.failpoints = Failpoints(settings.failpoint)
        self.prefetch = settings.prefetch or auto_prefetch(self.core.state.weights)
        self.max_batch = settings.max_batch or self.prefetch
        run_path = settings.run_path
        self.audit = EventLog(run_path / "audit.jsonl")
        self.metrics = EventLog(run_path / "metrics.jsonl")
        self._session = AmqpSession(settings, name="fedmq-aggregator")
        self._inbox: list[Delivery] = []
        self._requests: list[Delivery] = []
        self._body: tuple[int, bool, bytes] | None = None
        self._started = time.monotonic()
        self._elapsed_before = self.core.state.elapsed
        self._version_at_start = self.core.state.version
        self._update_rate = RateMeter()
        self._version_rate = RateMeter()
        self._staleness = StalenessStats()
        self._workers: dict[str, WorkerSeen] = {}
        self._active = ActiveWorkers(settings.worker_timeout)
        self._last_eval: dict[str, Any] | None = None
        self._last_eval_version = -1
        self._last_progress = 0.0
        self._stopped_because = ""

    # -- state -----------------------------------------------------------------
    def _restore_state(self) -> AggregatorState:
        if self.settings.checkpoint:
            loaded = load_checkpoint(self.settings.state_path)
            if loaded is not None:
                state, scalars, arrays = loaded
                restore_strategy(self.strategy, scalars, arrays)
                log.info("resumed run %s at version %d from %s", state.run_id, state.version, self.settings.state_path)
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
        self.audit.write("start", run_id=self.state.run_id, version=self.state.version, commit=self.state.commit)
        attempt, attached = 0, False
        try:
            while not self.stop.is_set():
                try:
                    self._attach()
                    attempt, attached = 0, True
                    if self.state.finished or self._serve():
                        self._finish()
                        break
                except (ConnectionLost, BrokerUnavailable) as exc:
                    if isinstance(exc, BrokerUnavailable) and not attached:
                        raise  # never reached it: a wrong URL or no broker, not an outage to sit out
                    self._inbox.clear()
                    self._requests.clear()
                    delay = backoff_delay(attempt, self.settings.connect_backoff_max)
                    attempt += 1
                    log.warning("lost the broker (%s); reconnecting in %.1fs", exc, delay)
                    self._session.close()
                    self.stop.wait(delay)
        finally:
            self._session.close()
            self.audit.close()
            self.metrics.close()
        return self.summary()

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
        self._publish_version(final=self.state.finished)

    def _serve(self) -> bool:
        """Returns True when a stop condition is met, False when stopped by a signal."""
        if self._last_eval is None:
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
            self._version_rate.mark(time.monotonic(), self.state.version - version_before)
            self._publish_version(final=False)
            self.failpoints.reached("after-publish")
        for delivery, outcome in outcomes:
            if isinstance(outcome, Rejected):
                self._dead_letter(delivery, outcome)
            elif isinstance(outcome, Duplicate):
                self.audit.write("duplicate", update_id=outcome.update_id, commit=self.state.commit)
        self._ack_batch(batch)
        self.observer.handled([o for _, o in outcomes], time.perf_counter() - started)
        if self.state.version // self.settings.eval_every != version_before // self.settings.eval_every:
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
            update = decode(delivery.body, ClientUpdate, content_type=delivery.properties.content_type, limits=self.limits)
        except DecodeError as exc:
            return self.core.reject(Rejected(exc.reason, exc.detail))
        outcome = self.core.handle(update, sender=sender)
        if not isinstance(outcome, Rejected):  # a refused or forged update says nothing about who is active
            self._active.seen(update.worker_id, time.monotonic())
        return outcome

    def _refresh_roster(self) -> None:
        """Pick up workers added or revoked since the roster was last read."""
        if self._roster_file is None:
            return
        try:
            roster = self._roster_file.reload_if_changed()
        except ValueError as exc:
            log.warning("keeping the previous roster: %s is invalid (%s)", self._roster_file.path, exc)
            return
        if roster is not None:
            self.core.identity = IdentityPolicy(self.settings.identity, roster)
            log.info("roster: %d active, %d revoked workers", len(roster.active), len(roster.revoked))

    def _close_round(self) -> None:
        """Synchronous strategies: step once every active worker has contributed, then publish."""
        if not self.core.close_round(self._active.active(time.monotonic())):
            return
        self.state.commit += 1
        self._version_rate.mark(time.monotonic())
        self._persist()
        self._publish_version(final=False)
        if self.state.version % self.settings.eval_every == 0:
            self._evaluate()

    def _record_applied(self, o: Applied) -> None:
        now = time.monotonic()
        self._update_rate.mark(now)
        self._staleness.add(o.staleness)
        seen = self._workers.setdefault(o.worker_id, WorkerSeen())
        seen.updates += 1
        seen.staleness_sum += o.staleness
        seen.train_seconds_sum += o.train_seconds
        seen.last_seen = time.time()
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

    def _dead_letter(self, delivery: Delivery, rejected: Rejected) -> None:
        late = rejected.reason in LATE_REJECTIONS
        if not late:
            body = delivery.body
            oversize = len(body) > self.limits.max_message_bytes
            props = dead_letter_properties(
                delivery.properties, rejected.reason, rejected.detail, dropped_body_bytes=len(body) if oversize else None
            )
            # An oversize body is not kept: the reason says enough, and the dead-letter queue stays small.
            self._session.publish(self.names.dead_exchange, "", b"" if oversize else body, props, mandatory=True)
        self.audit.write(
            "rejected",
            message_id=delivery.properties.message_id,
            user_id=delivery.properties.user_id,
            reason=rejected.reason,
            detail=rejected.detail[:300],
            dead_lettered=not late,
        )
        level = logging.DEBUG if late else logging.INFO
        log.log(level, "rejected %s: %s (%s)", delivery.properties.message_id, rejected.reason, rejected.detail)

    # -- versions and requests ---------------------------------------------------
    def _current_body(self, final: bool) -> bytes:
        version = self.state.version
        if self._body is None or self._body[0] != version or self._body[1] != final:
            self._body = None  # let the old version's body go before the new one is built
            message = ModelVersion(
                run_id=self.state.run_id,
                version=version,
                created_at=time.time(),
                final=final,
                config=train_config(self.settings, self.strategy),
                arrays=self.state.weights,
            )
            self._body = (version, final, encode(message))
        return self._body[2]

    def _publish_version(self, *, final: bool) -> None:
        body = self._current_body(final)
        props = model_properties(self.state.version)
        weights = self.state.weights
        # hashlib drops the GIL: the digest is computed while the publish waits for its confirm
        hashing = BackgroundTask(lambda: digest(weights), name="digest").start() if self.settings.audit_digests else None
        self._session.publish(self.names.models_exchange, BROADCAST_KEY, body, props, mandatory=False)
        self.state.counters.published += 1
        self.observer.published(self.state.version)
        fields: dict[str, Any] = {"version": self.state.version, "final": final}
        if hashing is not None:
            hashing.wait()
            fields["digest"] = hashing.result()
        self.audit.write("published", **fields)

    def _answer_requests(self) -> None:
        pending, self._requests[:] = list(self._requests), []
        answered: set[str] = set()
        for delivery in pending:
            try:
                request = decode(delivery.body, ModelRequest, content_type=delivery.properties.content_type, limits=self.limits)
            except DecodeError as exc:
                log.info("ignoring an invalid model request: %s", exc)
            else:
                self._active.seen(request.worker_id, time.monotonic())
                if request.worker_id not in answered:
                    answered.add(request.worker_id)
                    self._send_to_worker(request.worker_id)
            self._session.ack(delivery.delivery_tag)

    def _send_to_worker(self, worker_id: str) -> None:
        body = self._current_body(self.state.finished)
        try:
            self._session.publish(self.names.models_exchange, worker_key(worker_id), body, model_properties(self.state.version))
        except PublishFailed as exc:
            log.debug("worker %s went away before its model arrived (%s)", worker_id, exc)

    # -- evaluation, progress, stopping ------------------------------------------
    def _evaluate(self) -> None:
        if self._last_eval_version == self.state.version:
            return
        result = self.trainer.evaluate(dict(self.state.weights), self.config)
        self._last_eval_version = self.state.version
        self._last_eval = {"loss": result.loss, **result.metrics}
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
        acc = fields.get("accuracy")
        log.info(
            "v%-5d %s| %5.1f upd/s | staleness mean %.2f max %d | applied %d rejected %d dup %d | workers %d%s",
            fields["version"],
            f"acc {acc:.4f} loss {fields['loss']:.4f} " if acc is not None else "",
            fields["updates_per_s"],
            fields["staleness_mean"],
            fields["staleness_max"],
            fields["applied"],
            fields["rejected"],
            fields["duplicates"],
            fields["workers"],
            f" | epsilon {fields['epsilon']:.4g}" if "epsilon" in fields else "",
        )

    def progress_fields(self, now: float) -> dict[str, Any]:
        c = self.state.counters
        recent = sum(1 for w in self._workers.values() if time.time() - w.last_seen < 30)
        return {
            "version": self.state.version,
            "elapsed": round(self.elapsed(), 3),
            "updates_per_s": round(self._update_rate.rate(now), 3),
            "versions_per_s": round(self._version_rate.rate(now), 3),
            "staleness_mean": round(self._staleness.mean, 4),
            "staleness_max": self._staleness.maximum,
            "applied": c.applied,
            "rejected": sum(c.rejected.values()),
            "duplicates": c.duplicates,
            "pending": self.strategy.pending(),
            "workers": recent,
            "accuracy": (self._last_eval or {}).get("accuracy"),
            "loss": (self._last_eval or {}).get("loss"),
            **self._privacy_fields(),
        }

    def _publish_status(self, fields: dict[str, Any]) -> None:
        """The latest status report to ``{ns}.status``, for ``fedmq status`` (a lost one is replaced next tick)."""
        report = build_status(
            run_id=self.state.run_id,
            strategy=self.strategy.name,
            num_partitions=self.settings.num_partitions,
            now=time.time(),
            fields=fields,
            rejected=self.state.counters.rejected,
            staleness_histogram=self._staleness.histogram,
            workers=self._workers,
            eval_version=self._last_eval_version if self._last_eval is not None else None,
            finished=self.state.finished,
            stopped_because=self._stopped_because,
        )
        try:
            self._session.publish(self.names.status_exchange, "", encode_status(report), status_properties(), mandatory=False)
        except PublishFailed as exc:
            log.debug("status report not published (%s)", exc)

    def _privacy_fields(self) -> dict[str, Any]:
        report = privacy_report(self.strategy)
        if report is None:
            return {}
        return {"epsilon": report["epsilon"], "delta": report["delta"], "dp_clip": report["clip"]}

    def _should_stop(self) -> bool:
        s = self.settings
        if s.max_versions is not None and self.state.version >= s.max_versions:
            self._stopped_because = f"reached {s.max_versions} versions"
        elif s.max_seconds is not None and self.elapsed() >= s.max_seconds:
            self._stopped_because = f"reached {s.max_seconds:g}s of training"
        elif s.target_accuracy is not None and (self._last_eval or {}).get("accuracy", 0.0) >= s.target_accuracy:
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
        self._stopped_because = self._stopped_because or str(self.state.extra.get("stopped_because", "finished"))
        self._publish_version(final=True)
        self._publish_status(self.progress_fields(time.monotonic()))
        run_path = self.settings.run_path
        np.savez(run_path / "final_model.npz", **self.state.weights)
        (run_path / "summary.json").write_text(json.dumps(self.summary().__dict__, indent=2))
        log.info("finished run %s at version %d: %s", self.state.run_id, self.state.version, self._stopped_because)

    def summary(self) -> RunSummary:
        now = time.monotonic()
        elapsed = self.elapsed()
        c = self.state.counters
        session_seconds = max(now - self._started, 1e-9)
        return RunSummary(
            run_id=self.state.run_id,
            version=self.state.version,
            elapsed=round(elapsed, 3),
            stopped_because=self._stopped_because,
            accuracy=(self._last_eval or {}).get("accuracy"),
            loss=(self._last_eval or {}).get("loss"),
            applied=c.applied,
            duplicates=c.duplicates,
            rejected=dict(c.rejected),
            staleness_mean=round(self._staleness.mean, 4),
            staleness_max=self._staleness.maximum,
            stale_share=round(self._staleness.positive_share(), 4),
            updates_per_second=round(self._staleness.count / session_seconds, 3),
            versions_per_second=round((self.state.version - self._version_at_start) / session_seconds, 3),
            workers={
                wid: {
                    "updates": w.updates,
                    "mean_staleness": round(w.mean_staleness, 3),
                    "mean_train_seconds": round(w.mean_train_seconds, 4),
                }
                for wid, w in sorted(self._workers.items())
            },
            privacy=privacy_report(self.strategy),
        )
