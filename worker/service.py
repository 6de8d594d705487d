"""The worker's service loop: newest model in, local training off-thread, confirmed update out.

The I/O thread owns the AMQP session and never blocks for long: it acks
each model delivery at once (RabbitMQ's consumer timeout must never see a
delivery held during training), keeps heartbeats flowing while ``fit`` runs
on a background thread, and publishes the finished update with a confirm.
An update is retried, with the same ``update_id``, until the broker confirms it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.connection import AmqpSession, Delivery, backoff_delay
from broker.errors import (
    AccessRefused,
    BrokerError,
    ConnectionLost,
    MessageTooLarge,
    NotFound,
    PublishFailed,
    TopologyMismatch,
)
from broker.names import REQUEST_KEY, UPDATE_KEY, Names
from broker.properties import request_properties, update_properties
from broker.reconnect import serve_attached
from broker.topology import declare_topology, declare_worker_queue
from runtime.background import BackgroundTask
from runtime.eventlog import EventLog
from schemas.codec import Limits, decode, encode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate, ModelRequest, ModelVersion
from training.trainer import Trainer
from worker.claim import claim_partition
from worker.metrics import WorkerMetrics
from worker.settings import WorkerSettings
from worker.update import build_update

log = logging.getLogger("fedmq.worker")

POLL_SECONDS = 0.05
REQUEST_EVERY = 5.0
MAX_PUBLISH_BACKOFF = 10.0
FRESH_WAIT_SHARE = 0.5
#: While every partition is claimed, try again this often.
CLAIM_RETRY_SECONDS = 2.0


@dataclass
class WorkerStats:
    """What a worker did, returned when it stops."""

    models_received: int = 0
    updates_confirmed: int = 0
    publish_retries: int = 0
    reconnects: int = 0
    last_version: int | None = None
    stopped_because: str = ""


@dataclass
class _Outgoing:
    update: ClientUpdate
    body: bytes
    attempts: int = 0
    not_before: float = 0.0


@dataclass
class _State:
    latest: ModelVersion | None = None
    training: BackgroundTask[tuple[ClientUpdate, bytes]] | None = None
    training_base: int | None = None
    outgoing: _Outgoing | None = None
    last_base: int | None = None
    sent_at: float = 0.0
    last_fit_seconds: float = 0.0
    last_request: float = float("-inf")
    final: bool = False
    errors: list[str] = field(default_factory=list)


class WorkerService:
    """Attach to a federation, train on every newest model, publish updates."""

    def __init__(
        self,
        settings: WorkerSettings,
        trainer: Trainer | None,
        *,
        stop: threading.Event | None = None,
        trainer_for: Callable[[int], Trainer] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        """``trainer`` for a fixed partition; with ``claim_partition``, ``trainer_for(index)`` builds it once claimed."""
        if trainer is None and (trainer_for is None or not settings.claim_partition):
            raise ValueError("a worker needs a trainer, or claim_partition with trainer_for")
        self.settings = settings
        self.trainer = trainer
        self.trainer_for = trainer_for
        self.partition: int | None = None if settings.claim_partition else settings.partition_index
        self.metrics = metrics or WorkerMetrics()
        if self.partition is not None:
            self.metrics.partition.set(self.partition)
        self.stop = stop or threading.Event()
        self.names = Names(settings.namespace)
        self.stats = WorkerStats()
        self.limits = Limits(max_message_bytes=settings.max_message_bytes)
        self._session = AmqpSession(settings, name=f"fedmq-worker-{settings.worker_id}")
        self._state = _State()
        self._events = EventLog(settings.events_file)
        self._first_model_logged = False

    # -- lifecycle -------------------------------------------------------------
    def run(self) -> WorkerStats:
        """Run until stopped, the final model arrives, or ``max_updates`` is reached."""
        try:
            serve_attached(
                self._session,
                self._attach,
                self._loop,
                stop=self.stop,
                backoff_max=self.settings.connect_backoff_max,
                on_outage=self._on_outage,
            )
        finally:
            self._session.close()
            self._events.close()
        if not self.stats.stopped_because:
            self.stats.stopped_because = "signal"
        return self.stats

    def _on_outage(self, exc: BrokerError, delay: float) -> None:
        self.stats.reconnects += 1
        # NotFound: a worker that may not declare the exchanges started before the aggregator did.
        what = (
            "the federation is not set up yet" if isinstance(exc, NotFound) else "lost the broker"
        )
        log.warning("%s (%s); reconnecting in %.1fs", what, exc, delay)

    def _attach(self) -> None:
        self._session.open()
        try:
            declare_topology(self._session, self.names)
        except (AccessRefused, TopologyMismatch):
            # A provisioned worker may not configure shared resources, or the aggregator (which
            # owns them) declared other queue bounds: either way they exist already.
            self._session.open()
        if self.settings.claim_partition and not self._claim():
            return  # stopped while standing by
        queue = declare_worker_queue(self._session, self.names, self.settings.worker_id)
        self._session.set_prefetch(1)
        self._session.consume(queue, self._on_model, exclusive=True)
        self._state.last_request = float("-inf")
        self._first_model_logged = False
        self._events.write("attached", worker_id=self.settings.worker_id)
        log.info(
            "worker %s connected to %s at %s (namespace %s, partition %s/%d)",
            self.settings.worker_id,
            self._session.server_product,
            self.settings.masked_url(),
            self.settings.namespace,
            self.partition,
            self.settings.num_partitions,
        )

    def _claim(self) -> bool:
        """Hold a partition (our previous one if it is free); stand by while all are taken."""
        standing_by = False
        while not self.stop.is_set():
            index = claim_partition(
                self._session, self.names, self.settings.num_partitions, prefer=self.partition
            )
            if index is not None:
                self._use_partition(index)
                return True
            if not standing_by:
                standing_by = True
                log.warning(
                    "all %d partitions are claimed by other workers; standing by",
                    self.settings.num_partitions,
                )
                self._events.write("standby", worker_id=self.settings.worker_id)
            deadline = time.monotonic() + CLAIM_RETRY_SECONDS
            while not self.stop.is_set() and time.monotonic() < deadline:
                self._session.process_events(POLL_SECONDS * 4)  # keeps heartbeats flowing
        return False

    def _use_partition(self, index: int) -> None:
        if index == self.partition and self.trainer is not None:
            return
        if self.partition is not None:
            log.warning(
                "partition %d was taken by another worker while we were away; switching to %d",
                self.partition,
                index,
            )
        if self.trainer_for is None:
            raise RuntimeError("claim_partition needs trainer_for")
        self.trainer = self.trainer_for(index)
        self.partition = index
        self.metrics.partition.set(index)
        self._events.write("partition-claimed", worker_id=self.settings.worker_id, partition=index)
        log.info(
            "worker %s claimed partition %d of %d",
            self.settings.worker_id,
            index,
            self.settings.num_partitions,
        )

    # -- the loop --------------------------------------------------------------
    def _loop(self) -> None:
        st = self._state
        while not self.stop.is_set():
            self._session.process_events(self._poll_seconds())
            now = time.monotonic()
            if st.latest is None and now - st.last_request >= REQUEST_EVERY:
                self._request_model(now)
            self._collect_training()
            if st.outgoing is not None and now >= st.outgoing.not_before:
                self._publish(st.outgoing)
            if self._finished():
                return
            self._maybe_start_training(now)

    def _poll_seconds(self) -> float:
        """Block for I/O, but no longer than the fresh-model wait that may be running."""
        st = self._state
        if (
            st.training is None
            and st.outgoing is None
            and st.latest is not None
            and not st.latest.config.synchronous
        ):
            remaining = st.sent_at + self._fresh_wait() - time.monotonic()
            return min(POLL_SECONDS, max(remaining, 0.0))
        return POLL_SECONDS

    def _fresh_wait(self) -> float:
        # Waiting for a fresher model is worth at most a fraction of a fit.
        return min(self.settings.fresh_wait, FRESH_WAIT_SHARE * self._state.last_fit_seconds)

    def _finished(self) -> bool:
        st = self._state
        if st.final and st.outgoing is None:
            self.stats.stopped_because = "final model received"
            return True
        limit = self.settings.max_updates
        if limit is not None and self.stats.updates_confirmed >= limit and st.outgoing is None:
            self.stats.stopped_because = f"max_updates={limit} reached"
            return True
        return False

    def _on_model(self, delivery: Delivery) -> None:
        self._session.ack(delivery.delivery_tag)  # at once: never hold a delivery while training
        try:
            model = decode(
                delivery.body,
                ModelVersion,
                content_type=delivery.properties.content_type,
                limits=self.limits,
            )
        except DecodeError as exc:
            log.warning("ignoring an invalid model message: %s", exc)
            return
        st = self._state
        same_run = st.latest is not None and st.latest.run_id == model.run_id
        if same_run and model.version < st.latest.version and not model.final:  # type: ignore[union-attr]
            return
        st.latest = model
        st.final = st.final or model.final
        if not self._first_model_logged:
            self._first_model_logged = True
            self._events.write("model-received", version=model.version, run_id=model.run_id)
        self.stats.models_received += 1
        self.metrics.models_received.inc()
        self.stats.last_version = model.version

    def _request_model(self, now: float) -> None:
        self._state.last_request = now
        request = ModelRequest(worker_id=self.settings.worker_id)
        props = request_properties(self.settings.worker_id, self._session.username)
        try:
            self._session.publish(self.names.inbox_exchange, REQUEST_KEY, encode(request), props)
        except PublishFailed as exc:
            log.info("model request not delivered (%s); the aggregator may not be up yet", exc)

    def _maybe_start_training(self, now: float) -> None:
        st = self._state
        if st.training is not None or st.outgoing is not None or st.latest is None or st.final:
            return
        fresh = st.last_base is None or st.latest.version > st.last_base
        if not fresh and (st.latest.config.synchronous or now - st.sent_at < self._fresh_wait()):
            return  # synchronous rounds: an update per version is all that counts
        model = st.latest
        st.training_base = model.version
        self._events.write("training", base_version=model.version)
        st.training = BackgroundTask(
            lambda: self._train(model), name=f"fit-v{model.version}", on_done=self._wake
        ).start()

    def _wake(self) -> None:
        """From the training thread: make the I/O thread's ``process_events`` return now."""
        try:
            self._session.add_callback_threadsafe(lambda: None)
        except BrokerError:
            pass  # the connection is gone; the I/O thread is reconnecting and will poll

    def _train(self, model: ModelVersion) -> tuple[ClientUpdate, bytes]:
        """Runs on the training thread: fit, emulate a slow device, build and encode the update."""
        started = time.monotonic()
        if self.trainer is None:
            raise RuntimeError("training before a partition is held")
        fit = self.trainer.fit(dict(model.arrays), model.config)
        elapsed = time.monotonic() - started
        extra = self.settings.delay + (self.settings.slowdown - 1.0) * elapsed
        if extra > 0:
            time.sleep(extra)
        update = build_update(self.settings.worker_id, model, fit, time.monotonic() - started)
        return update, encode(update)

    def _collect_training(self) -> None:
        st = self._state
        if st.training is None or not st.training.done():
            return
        task, st.training = st.training, None
        try:
            update, body = task.result()
        except Exception as exc:  # a trainer bug must not take the worker's connection down
            log.exception("training on version %s failed: %s", st.training_base, exc)
            st.errors.append(repr(exc))
            st.last_base, st.sent_at = st.training_base, time.monotonic()
            return
        st.last_fit_seconds = update.train_seconds
        st.outgoing = _Outgoing(update, body)

    def _publish(self, out: _Outgoing) -> None:
        st = self._state
        props = update_properties(
            out.update.update_id, self._session.username, out.update.base_version
        )
        try:
            self._session.publish(
                self.names.inbox_exchange, UPDATE_KEY, out.body, props, mandatory=True
            )
        except PublishFailed as exc:
            if st.final:
                # Training is over: no aggregator will apply it, and a full queue stays full.
                log.info("run finished; abandoning update %s (%s)", out.update.update_id, exc)
                self._events.write("abandoned", update_id=out.update.update_id, reason=str(exc))
                st.outgoing = None
                return
            out.attempts += 1
            self.stats.publish_retries += 1
            self.metrics.publish_retries.inc()
            delay = backoff_delay(out.attempts, MAX_PUBLISH_BACKOFF)
            out.not_before = time.monotonic() + delay
            log.warning(
                "update %s not accepted (%s); retrying in %.1fs", out.update.update_id, exc, delay
            )
            self._events.write("publish-refused", update_id=out.update.update_id, reason=str(exc))
            return
        except MessageTooLarge as exc:
            log.error("dropping update %s: %s", out.update.update_id, exc)
            self._events.write("dropped", update_id=out.update.update_id, reason=str(exc))
            st.outgoing = None
            st.last_base, st.sent_at = out.update.base_version, time.monotonic()
            return
        except ConnectionLost:
            out.attempts += 1
            self.stats.publish_retries += 1
            raise  # reconnect, then the same update (same id) is published again
        st.outgoing = None
        st.last_base, st.sent_at = out.update.base_version, time.monotonic()
        self.stats.updates_confirmed += 1
        self.metrics.updates_confirmed.inc()
        self.metrics.train_seconds.observe(out.update.train_seconds)
        self._events.write(
            "confirmed",
            update_id=out.update.update_id,
            worker_id=out.update.worker_id,
            base_version=out.update.base_version,
            num_examples=out.update.num_examples,
            train_seconds=round(out.update.train_seconds, 4),
            partition=self.partition,
        )
        log.debug("update %s on v%d confirmed", out.update.update_id, out.update.base_version)


__all__ = ["BrokerError", "WorkerService", "WorkerStats"]
