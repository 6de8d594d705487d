"""The worker's service loop: newest model in, local training off-thread, confirmed update out.

The I/O thread owns the AMQP session and never blocks for long: it acks
each model delivery at once (RabbitMQ's consumer timeout must never see a
delivery held during training), keeps heartbeats flowing while ``fit`` runs
on a background thread (``worker.fitting``), and publishes the finished
update with a confirm (``worker.outbox``), retried with the same
``update_id`` until the broker confirms it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import AccessRefused, BrokerError, NotFound, TopologyMismatch
from broker.names import Names
from broker.reconnect import serve_attached
from broker.topology import attach_worker_queue, ensure_topology
from privacy.local_guard import Refusal
from runtime.eventlog import EventLog
from training.trainer import Trainer
from worker.claim import PartitionHolder
from worker.fitting import DeviceProfile, Fitting
from worker.inbox import ModelInbox, look_for_final, request_model
from worker.metrics import WorkerMetrics
from worker.outbox import Outbox
from worker.secure import SecureParticipant
from worker.settings import WorkerSettings

log = logging.getLogger("fedmq.worker")

POLL_SECONDS = 0.05


@dataclass
class WorkerStats:
    """What a worker did, returned when it stops."""

    models_received: int = 0
    updates_confirmed: int = 0
    publish_retries: int = 0
    reconnects: int = 0
    last_version: int | None = None
    stopped_because: str = ""


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
        """``trainer`` for a fixed partition; with ``claim_partition``, ``trainer_for(index)``
        builds it once a partition is claimed."""
        if trainer is None and (trainer_for is None or not settings.claim_partition):
            raise ValueError("a worker needs a trainer, or claim_partition with trainer_for")
        self.settings = settings
        self.stop = stop or threading.Event()
        self.names = Names(settings.namespace)
        self.metrics = metrics or WorkerMetrics()
        self.stats = WorkerStats()
        self._session = AmqpSession(settings, name=f"fedmq-worker-{settings.worker_id}")
        self._events = EventLog(settings.events_file)
        self.partition = self._partition_holder(trainer, trainer_for)
        self.inbox = ModelInbox.for_worker(settings, events=self._events, metrics=self.metrics)
        self.outbox = Outbox(self.names, self.inbox, events=self._events, metrics=self.metrics)
        self._slots = 1  # the model queue's length: grows to a chunked model's chunk count
        self._consumer = ""
        self.fitting = Fitting(
            settings.worker_id,
            self._events,
            DeviceProfile(settings.delay, settings.slowdown),
            settings.fresh_wait,
        )
        self.guard = settings.local_guard()
        self._refused_for_good: str | None = None
        self.secure = SecureParticipant(
            settings.worker_id, self._events, min_noise=settings.secure_dp_min_noise
        )

    def _partition_holder(
        self, trainer: Trainer | None, trainer_for: Callable[[int], Trainer] | None
    ) -> PartitionHolder:
        settings = self.settings
        return PartitionHolder(
            worker_id=settings.worker_id,
            num_partitions=settings.num_partitions,
            index=None if settings.claim_partition else settings.partition_index,
            trainer=trainer,
            trainer_for=trainer_for,
            events=self._events,
            metrics=self.metrics,
        )

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
        self.stats.stopped_because = self.stats.stopped_because or "signal"
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
            ensure_topology(self._session, self.names)
        except TopologyMismatch:
            # The aggregator (which owns them) declared other queue bounds: they exist.
            self._session.reset_channel()
        if self.settings.claim_partition:
            if not self.partition.claim(self._session, self.names, self.stop):
                return  # stopped while standing by
        self._subscribe()
        self._events.write("attached", worker_id=self.settings.worker_id)
        log.info(
            "worker %s connected to %s at %s (namespace %s, partition %s/%d)",
            self.settings.worker_id,
            self._session.server_product,
            self.settings.masked_url(),
            self.settings.namespace,
            self.partition.index,
            self.settings.num_partitions,
        )

    def _subscribe(self) -> None:
        queue = attach_worker_queue(
            self._session, self.names, self.settings.worker_id, slots=self._slots
        )
        self.secure.identity = self._session.username or self.settings.worker_id  # the broker's
        look_for_final(self._session, self.names, self.inbox)  # before any delivery is open
        self._session.set_prefetch(1)
        self._consumer = self._session.consume(queue, self._on_model, exclusive=True)
        self.inbox.attached()

    def _fit_queue_to_model(self) -> None:
        """A chunked model needs a queue that holds every chunk: make it so, then ask again.

        The queue held fewer messages than the model's chunk set, so the set's head was dropped;
        ``basic.cancel`` returns whatever pika had not dispatched yet, and the queue is declared
        anew, as large as the set.
        """
        self._slots = self.inbox.assembly.largest_set
        log.info("model arrives in %d chunks: resizing the model queue", self._slots)
        self._session.cancel(self._consumer)
        try:
            self._session.delete_queue(self.names.worker_queue(self.settings.worker_id))
        except AccessRefused:
            log.error(
                "the model arrives in %d chunks but this worker's provisioned queue keeps fewer "
                "messages, and the worker may not resize it: raise --chunk-bytes to the broker's "
                "max_message_size, or provision the queue with room for the chunks",
                self._slots,
            )
            self._session.reset_channel()
        self._subscribe()

    # -- the loop --------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop.is_set():
            self._session.process_events(
                self.fitting.poll_seconds(
                    self.inbox.latest, POLL_SECONDS, sending=self.outbox.pending is not None
                )
            )
            if self.inbox.assembly.largest_set > self._slots:
                self._fit_queue_to_model()
            now = time.monotonic()
            if self.inbox.request_due(now):
                self._request_model()
            collected = self.secure.take_fit(
                self.fitting.collect(), self.inbox.latest, self.fitting
            )
            if collected is not None:
                self.outbox.put(*collected)
            self.secure.send(self._session, self.names, self.inbox.latest, now)
            if self.outbox.due(now):
                self._send()
            if self._finished():
                return
            self._maybe_start_training(now)

    def _finished(self) -> bool:
        if self.outbox.pending is not None:
            return False
        if self._refused_for_good:
            self.stats.stopped_because = self._refused_for_good
            return True
        if self.inbox.final:
            self.stats.stopped_because = "final model received"
            return True
        limit = self.settings.max_updates
        if limit is not None and self.outbox.confirmed >= limit:
            self.stats.stopped_because = f"max_updates={limit} reached"
            return True
        return False

    def _on_model(self, delivery: Delivery) -> None:
        self._session.ack(delivery.delivery_tag)  # at once: never hold a delivery while training
        props = delivery.properties
        self.inbox.receive(delivery.body, props.content_type, props.headers, props.user_id)
        self.secure.offer(self.inbox.take_secure_round())
        self.stats.models_received = self.inbox.received
        if self.inbox.latest is not None:
            self.stats.last_version = self.inbox.latest.version

    def _request_model(self) -> None:
        request_model(self._session, self.names, self.settings.worker_id)

    def _send(self) -> None:
        try:
            settled = self.outbox.send(
                self._session, final=self.inbox.final, partition=self.partition.index
            )
        finally:
            self.stats.publish_retries = self.outbox.retries
        if settled is not None:
            self.fitting.settled(settled.base_version)
        self.stats.updates_confirmed = self.outbox.confirmed

    def _maybe_start_training(self, now: float) -> None:
        latest = self.inbox.latest
        if self.fitting.task is not None or self.outbox.pending is not None:
            return
        if not self.secure.may_train(latest, now, self.inbox, self._request_model):
            return  # secure aggregation: train only for a buffer this worker is invited to
        if latest is None or self.inbox.final or not self.fitting.should_start(latest, now):
            return
        trainer = self.partition.trainer
        if trainer is None:  # only before a partition is claimed, when no model can arrive
            return
        refused = self.guard.refusal(latest.config)
        if refused is not None:
            self._refuse(latest.version, refused)
            return
        self.guard.charge(latest.config)  # before training: an update made is a release spent
        self.fitting.start(trainer, latest, self._wake)

    def _refuse(self, version: int, refused: Refusal) -> None:
        """Skip ``version``: below this worker's privacy floor, or its budget is spent."""
        log.warning("not training on version %s: %s", version, refused.reason)
        self._events.write("config-refused", base_version=version, reason=refused.reason)
        self.fitting.settled(version)  # wait for a newer version rather than ask again at once
        if refused.final:
            self._refused_for_good = refused.reason

    def _wake(self) -> None:
        """From the training thread: make the I/O thread's ``process_events`` return now."""
        try:
            self._session.add_callback_threadsafe(lambda: None)
        except BrokerError:
            pass  # the connection is gone; the I/O thread is reconnecting and will poll


__all__ = ["BrokerError", "WorkerService", "WorkerStats"]
