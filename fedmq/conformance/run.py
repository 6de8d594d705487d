"""Run a short federation against a worker command and record what the worker does (the shell).

The federation is the real aggregator (``fedmq.api``, built-in trainer) on a namespace
of its own. A tap, an exclusive queue bound to the inbox exchange with the ``update``
and ``request`` keys, receives a copy of everything the worker publishes there, and a
second one the final model (``FINAL_KEY``): the end of the run, as the worker sees it. A
second connection probes the worker's model queue. The worker command runs as a child
process with the federation's coordinates in its environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO

from aggregator.settings import AggregatorSettings
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import NotFound, ResourceLocked
from broker.names import FINAL_KEY, REQUEST_KEY, UPDATE_KEY, Names
from broker.teardown import delete_namespace
from broker.topology import declare_topology
from fedmq.api import Federation, FederationResult
from fedmq.conformance.rules import EXIT_GRACE, Observed, Seen
from schemas.codec import decode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate, Message, ModelRequest
from tasks.builtin import make_trainer

POLL_SECONDS = 0.2


def worker_environment(settings: AggregatorSettings, worker_id: str) -> dict[str, str]:
    """What the worker command is told: the broker, the namespace, its id and partition."""
    return {
        **os.environ,
        "AMQP_URL": settings.amqp_url,
        "FEDMQ_NAMESPACE": settings.namespace,
        "FEDMQ_WORKER_ID": worker_id,
        "FEDMQ_NUM_PARTITIONS": str(settings.num_partitions),
        "FEDMQ_PARTITION_INDEX": "0",
        "PYTHONUNBUFFERED": "1",
    }


def _seen(delivery: Delivery) -> Seen:
    expected: type[Message] = ModelRequest if delivery.routing_key == REQUEST_KEY else ClientUpdate
    try:
        message = decode(delivery.body, expected, content_type=delivery.properties.content_type)
    except DecodeError as exc:
        return Seen(delivery.properties, None, f"{exc.reason}: {exc.detail}"[:200])
    return Seen(delivery.properties, message)


class Observation:
    """The tap, the probe and the worker process of one conformance run."""

    def __init__(self, settings: AggregatorSettings, worker_id: str) -> None:
        self.settings, self.names = settings, Names(settings.namespace)
        self.tap = AmqpSession(settings, name="fedmq-conformance-tap")
        self.probe = AmqpSession(settings, name="fedmq-conformance-probe")
        self.observed = Observed(worker_id=worker_id, amqp_user=self.tap.username)
        #: When the tap saw the final model (monotonic clock).
        self.final_at: float | None = None

    def open(self) -> None:
        self.tap.open()
        self.probe.open()
        declare_topology(self.tap, self.names)
        queue = f"{self.settings.namespace}.conformance-tap"
        self.tap.declare_queue(queue, exclusive=True, auto_delete=True)
        for key in (UPDATE_KEY, REQUEST_KEY):
            self.tap.bind_queue(queue, self.names.inbox_exchange, key)
        self.tap.consume(queue, self._on_delivery)
        final = f"{self.settings.namespace}.conformance-final"
        self.tap.declare_queue(final, exclusive=True, auto_delete=True)
        self.tap.bind_queue(final, self.names.models_exchange, FINAL_KEY)
        self.tap.consume(final, self._on_final)

    def _on_final(self, delivery: Delivery) -> None:
        self.tap.ack(delivery.delivery_tag)
        if self.final_at is None:
            self.final_at = time.monotonic()

    def _on_delivery(self, delivery: Delivery) -> None:
        self.tap.ack(delivery.delivery_tag)
        seen = _seen(delivery)
        target = self.observed.requests if delivery.routing_key == REQUEST_KEY else None
        (target if target is not None else self.observed.updates).append(seen)

    def poll(self) -> None:
        self.tap.process_events(POLL_SECONDS)
        if self.observed.attached:
            return
        try:
            consumers = self.probe.queue_counts(self.names.worker_queue(self.observed.worker_id))[1]
            self.observed.attached = consumers > 0
        except ResourceLocked:  # an exclusive queue held by the worker's own connection
            self.observed.attached = True
            self.probe.reset_channel()
        except NotFound:
            self.probe.reset_channel()

    def close(self) -> None:
        try:
            delete_namespace(self.probe, self.names, force=True)
        finally:
            self.tap.close()
            self.probe.close()


class _Aggregator(threading.Thread):
    """The federation (aggregator only) in a thread; its result or its exception."""

    def __init__(self, federation: Federation) -> None:
        super().__init__(name="fedmq-conformance-aggregator", daemon=True)
        self.federation = federation
        self.result: FederationResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.federation.run()
        except BaseException as exc:  # re-raised by ``observe`` in the caller's thread
            self.error = exc


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _watch(
    watch: Observation, run: _Aggregator, process: subprocess.Popen[bytes]
) -> tuple[float | None, bool]:
    """Poll while the federation runs and up to ``EXIT_GRACE`` after its end: when the worker
    process was seen to have exited (None: still running), and whether that was before the end.

    The end is the final model as the tap saw it; an exit counts as after the end if the tap
    has the final model by the time the exit is seen (within one poll of happening).
    """
    exited: float | None = None
    before_end = False
    while run.is_alive():
        watch.poll()
        if exited is None and process.poll() is not None:
            exited = time.monotonic()
            watch.poll()  # the final model may be in the tap's buffer already
            before_end = watch.final_at is None
    ended = watch.final_at if watch.final_at is not None else time.monotonic()
    while exited is None and time.monotonic() - ended < EXIT_GRACE:
        watch.poll()
        if process.poll() is not None:
            exited = time.monotonic()
    return exited, before_end


def observe(
    settings: AggregatorSettings, command: Sequence[str], *, worker_id: str, log: IO[bytes]
) -> Observed:
    """Run the federation with ``command`` as its one worker; what the worker did."""
    watch = Observation(settings, worker_id)
    watch.open()
    try:
        run = _Aggregator(Federation(settings, make_trainer, workers=0))
        run.start()
        process = subprocess.Popen(
            list(command), env=worker_environment(settings, worker_id), stdout=log, stderr=log
        )
        try:
            exited, before_end = _watch(watch, run, process)
            watch.observed.exited_before_end = before_end
            ended = watch.final_at
            if exited is None or before_end or ended is None:
                watch.observed.exit_after_final = None
            else:
                watch.observed.exit_after_final = max(0.0, exited - ended)
        finally:
            if process.poll() is None:
                _stop(process)
        if run.error is not None:
            raise run.error
        watch.observed.exit_code = process.returncode
        watch.observed.summary = run.result.summary if run.result else None
        return watch.observed
    finally:
        watch.close()
