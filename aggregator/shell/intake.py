"""Updates in: apply a batch, persist, publish, dead-letter the rejects, then acknowledge once.

Because a version is published only after the state that produced it is on
disk, and an update is acked only after that, a crash at any point costs at
most a redelivery, which the update-id window turns into a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator, Applied, Duplicate, Outcome
from aggregator.core.tracker import RunTracker
from aggregator.core.validation import Rejected
from aggregator.settings import AggregatorSettings
from aggregator.shell.clock import RunClock
from aggregator.shell.failpoints import Failpoints
from aggregator.shell.isolation import ResultsConsumer
from aggregator.shell.observer import Observer
from aggregator.shell.publisher import Publisher
from aggregator.shell.spool import Assembled, GivenUp, RefusedChunk, Spool
from aggregator.shell.store import StateStore
from broker.connection import AmqpSession
from broker.delivery import Delivery
from runtime.eventlog import EventLog
from schemas.chunks import chunk_count, read_chunk_header
from schemas.codec import Limits, decode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate

#: What waits in the intake's inbox: a whole delivery, a reassembled chunk set, a chunk rejected by
#: itself, or an incomplete set given up.
Item = Delivery | Assembled | RefusedChunk | GivenUp

PREFETCH_BUDGET_BYTES = 64 << 20
MAX_AUTO_PREFETCH = 64
#: Polls (0.1 s each) with no ready message and no delivery before the end's drain stops.
DRAIN_QUIET_POLLS = 3
#: Chunked updates: the window holds this many whole sets at once (spooled to disk, not memory),
#: so as many workers can send at the same time without their chunks starving one another.
CONCURRENT_CHUNK_SETS = 8
#: Bytes an update's header and alignment add to its arrays, at most (for counting its chunks).
UPDATE_OVERHEAD_BYTES = 64 << 10


def auto_prefetch(weights: dict[str, np.ndarray]) -> int:
    """Unacked updates in flight: as many as fit in a fixed memory budget (1..64)."""
    size = max(sum(a.nbytes for a in weights.values()), 1)
    return max(1, min(MAX_AUTO_PREFETCH, PREFETCH_BUDGET_BYTES // size))


def chunk_window(weights: dict[str, np.ndarray], chunk_bytes: int, prefetch: int) -> int:
    """The window chunked updates need: ``CONCURRENT_CHUNK_SETS`` whole sets (their chunks are
    spooled to disk, so this bounds disk, not memory), and never less than ``prefetch``.
    """
    size = sum(a.nbytes for a in weights.values()) + UPDATE_OVERHEAD_BYTES
    return max(prefetch, CONCURRENT_CHUNK_SETS * chunk_count(size, chunk_bytes))


def chosen_prefetch(settings: AggregatorSettings, weights: dict[str, np.ndarray]) -> int:
    """``--prefetch`` if given, else ``auto_prefetch`` for the model."""
    return settings.prefetch or auto_prefetch(weights)


class Intake:
    """The results queue's deliveries, handled ``max_batch`` at a time with one commit each."""

    def __init__(
        self,
        session: AmqpSession,
        core: Aggregator,
        *,
        limits: Limits,
        max_batch: int,
        store: StateStore,
        publisher: Publisher,
        tracker: RunTracker,
        audit: EventLog,
        observer: Observer,
        active: ActiveWorkers,
        failpoints: Failpoints,
        clock: RunClock,
        unanswered_below: Callable[[], int | None],
        spool: Spool,
        max_versions: int | None = None,
    ) -> None:
        """``max_versions``: the run ends there, so a batch never steps past it (its later updates
        are ``after-final``)."""
        self.session, self.core, self.limits, self.max_batch = session, core, limits, max_batch
        self.max_versions = max_versions
        self.store, self.publisher, self.tracker = store, publisher, tracker
        self.audit, self.observer, self.active = audit, observer, active
        self.failpoints, self.clock = failpoints, clock
        self.unanswered_below = unanswered_below
        self.spool = spool
        self.chunk_window = chunk_window(
            core.state.weights, session.settings.chunk_bytes, max_batch
        )
        self.inbox: list[Item] = []

    def receive(self, delivery: Delivery) -> None:
        """A whole update waits in the inbox; a chunk goes to the spool until its set is whole."""
        if delivery.properties.faults:  # dead-lettered as bad-properties, whatever it claims
            self.inbox.append(delivery)
            return
        try:
            header = read_chunk_header(delivery.properties.headers)
        except DecodeError as exc:
            self.inbox.append(RefusedChunk(delivery, Rejected(exc.reason, exc.detail)))
            return
        if header is None:
            self.inbox.append(delivery)
            return
        refused = self.core.admit(delivery.properties.user_id)  # spool nothing from a stranger
        if refused is not None:
            self.inbox.append(RefusedChunk(delivery, refused))
            return
        ready = self.spool.take(delivery, header, self.clock.now())
        if ready is not None:
            self.inbox.append(ready)

    def sweep(self, results: ResultsConsumer) -> None:
        """Give up chunk sets idle too long; when open sets fill the consumer's window, widen it
        to ``chunk_window`` (the memory-sized window, 1 after an attachment, may be too small for
        one set to be whole), or, once it is that wide, give up the stalest set.
        """
        self.inbox.extend(self.spool.expired(self.clock.now()))
        if self.spool.core.held_tags() < results.window:
            return
        if results.suspicious or results.window < self.chunk_window:
            results.widen(self.chunk_window)  # poison isolation stops at chunk sets
        elif not self.inbox:
            stalled = self.spool.unblock(results.window)
            if stalled is not None:
                self.inbox.append(stalled)

    def drain(self, results_queue: str, *, seconds: float) -> int:
        """After the final version: take what is still in the results queue (each acked, and
        audited as ``after-final``) until it is empty or ``seconds`` have passed; how many.
        """
        deadline, handled, quiet = time.monotonic() + seconds, 0, 0
        # Empty means no ready message and nothing delivered over a few polls: the queue's count
        # leaves out a delivery already on its way to us.
        while time.monotonic() < deadline and quiet < DRAIN_QUIET_POLLS:
            self.session.process_events(0.1)
            if self.inbox:
                while self.inbox:
                    handled += len(self.handle_batch())
                quiet = 0
            elif self.session.queue_counts(results_queue)[0] == 0:
                quiet += 1
        return handled

    def clear(self) -> None:
        """Forget deliveries whose channel died (the broker redelivers them)."""
        self.inbox.clear()
        self.spool.clear()

    def batches_waiting(self) -> int:
        """Batches the inbox holds now (a chunk set can be completed meanwhile: ``Intake.receive``
        may run during a publish, as pika reads chunks)."""
        return -(-len(self.inbox) // self.max_batch)

    def handle_batch(self) -> list[Delivery]:
        """Apply up to ``max_batch`` updates as one commit: persist, publish, dead-letter, ack.

        Returns the whole deliveries it handled (``ResultsConsumer.settled`` judges by them).
        """
        batch, self.inbox = self.inbox[: self.max_batch], self.inbox[self.max_batch :]
        started = time.perf_counter()
        version_before = self.core.state.version
        outcomes = [(d, self._outcome(d)) for d in batch]
        applied = [o for _, o in outcomes if isinstance(o, Applied)]
        if self.core.state.version != version_before:
            self.core.check_publishable()  # raises before anything is persisted or published
        if applied:
            self._commit(applied)
        if self.core.state.version != version_before:
            self.tracker.versions(self.core.state.version - version_before, self.clock.now())
            self.publisher.publish_version(final=False)
            self.failpoints.reached("after-publish")
        for delivery, outcome in outcomes:
            self._settle(delivery, outcome)
        self._ack(batch)
        self.observer.handled([o for _, o in outcomes], time.perf_counter() - started)
        return [d for d in map(_whole, batch) if d is not None]

    def _commit(self, applied: list[Applied]) -> None:
        commit = self.core.begin_commit()
        for o in applied:
            self.tracker.applied(o, self.clock.now(), self.clock.wall())
            self.audit.write(
                "applied",
                update_id=o.update_id,
                worker_id=o.worker_id,
                base_version=o.base_version,
                staleness=o.staleness,
                weight=round(o.weight, 6),
                version=o.version,
                commit=commit,
                **({"excluded": o.excluded} if o.excluded else {}),
            )
        self.failpoints.reached("before-checkpoint")
        self.store.persist(self.core, self.clock.elapsed())
        self.failpoints.reached("after-checkpoint")

    def _settle(self, item: Item, outcome: Outcome) -> None:
        if isinstance(outcome, Rejected):
            if isinstance(item, Delivery):
                self.publisher.dead_letter(item, outcome)
            elif isinstance(item, RefusedChunk):
                self.publisher.dead_letter(item.delivery, outcome)
            else:  # a set's body is not kept: it may not fit in one message
                size = item.total_bytes if isinstance(item, GivenUp) else item.header.total_bytes
                stub = Delivery(max(item.tags), False, "", b"", item.properties)
                self.publisher.dead_letter(stub, outcome, dropped_body_bytes=size)
        elif isinstance(outcome, Duplicate):
            self.audit.write(
                "duplicate", update_id=outcome.update_id, commit=self.core.state.commit
            )

    def _ack(self, batch: list[Item]) -> None:
        """One ``multiple`` ack for the batch (pika flushes and polls per ack: ~0.5 ms each).

        Only when nothing held outside the batch has a lower tag (a model request awaiting its
        answer, an open chunk set, an update still in the inbox), or it would be acknowledged with
        the batch.
        """
        tags = sorted(t for item in batch for t in _tags(item))
        held = [self.unanswered_below(), self.spool.lowest_tag()]
        held += [min(_tags(item)) for item in self.inbox]
        lowest_held = min((t for t in held if t is not None), default=None)
        if lowest_held is None or lowest_held > tags[-1]:
            self.session.ack(tags[-1], multiple=True)
            return
        for tag in tags:
            self.session.ack(tag)

    def _ended(self) -> bool:
        version, cap = self.core.state.version, self.max_versions
        return self.core.state.finished or (cap is not None and version >= cap)

    def _outcome(self, item: Item) -> Outcome:
        if isinstance(item, RefusedChunk | GivenUp):
            return self.core.reject(item.rejected)
        faults = item.properties.faults
        if faults:  # before anything reads them: which sender, which content type
            return self.core.reject(Rejected("bad-properties", "; ".join(faults)))
        sender = item.properties.user_id
        refused = self.core.admit(sender)  # nothing from an unaccepted sender is even decoded
        if refused:
            return refused
        body = item.body if isinstance(item, Delivery) else item.body()
        if isinstance(body, Rejected):
            return self.core.reject(body)
        try:
            update = decode(
                body, ClientUpdate, content_type=item.properties.content_type, limits=self.limits
            )
        except DecodeError as exc:
            return self.core.reject(Rejected(exc.reason, exc.detail))
        if isinstance(item, Assembled) and update.update_id != item.header.set_id:
            return self.core.reject(
                Rejected(
                    "chunk-mismatch", f"set {item.header.set_id!r} carries {update.update_id!r}"
                )
            )
        outcome = (
            self.core.reject(Rejected("after-final", f"the run ended at {self.core.state.version}"))
            if self._ended()
            else self.core.handle(update, sender=sender)
        )
        if isinstance(outcome, Rejected):  # the audit line names the update and its worker
            return replace(outcome, update_id=update.update_id, worker_id=update.worker_id)
        self.active.seen(update.worker_id, self.clock.now())  # not for refused or forged ones
        return outcome


def _whole(item: Item) -> Delivery | None:
    """The delivery an item is, if it is one message (not a chunk set)."""
    if isinstance(item, RefusedChunk):
        return item.delivery
    return item if isinstance(item, Delivery) else None


def _tags(item: Item) -> tuple[int, ...]:
    if isinstance(item, Delivery):
        return (item.delivery_tag,)
    if isinstance(item, RefusedChunk):
        return (item.delivery.delivery_tag,)
    return item.tags
