"""Updates in: apply a batch, persist, publish, dead-letter the rejects, then acknowledge once.

Because a version is published only after the state that produced it is on
disk, and an update is acked only after that, a crash at any point costs at
most a redelivery, which the update-id window turns into a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator, Applied, Duplicate, Outcome
from aggregator.core.tracker import RunTracker
from aggregator.core.validation import Rejected
from aggregator.shell.clock import RunClock
from aggregator.shell.failpoints import Failpoints
from aggregator.shell.observer import Observer
from aggregator.shell.publisher import Publisher
from aggregator.shell.store import StateStore
from broker.connection import AmqpSession
from broker.delivery import Delivery
from runtime.eventlog import EventLog
from schemas.codec import Limits, decode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate

PREFETCH_BUDGET_BYTES = 64 << 20
MAX_AUTO_PREFETCH = 64


def auto_prefetch(weights: dict[str, np.ndarray]) -> int:
    """Unacked updates in flight: as many as fit in a fixed memory budget (1..64)."""
    size = max(sum(a.nbytes for a in weights.values()), 1)
    return max(1, min(MAX_AUTO_PREFETCH, PREFETCH_BUDGET_BYTES // size))


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
    ) -> None:
        self.session, self.core, self.limits, self.max_batch = session, core, limits, max_batch
        self.store, self.publisher, self.tracker = store, publisher, tracker
        self.audit, self.observer, self.active = audit, observer, active
        self.failpoints, self.clock = failpoints, clock
        self.unanswered_below = unanswered_below
        self.inbox: list[Delivery] = []

    def receive(self, delivery: Delivery) -> None:
        self.inbox.append(delivery)

    def clear(self) -> None:
        """Forget deliveries whose channel died (the broker redelivers them)."""
        self.inbox.clear()

    def handle_batch(self) -> list[Delivery]:
        """Apply up to ``max_batch`` updates as one commit: persist, publish, dead-letter, ack.

        Returns the batch it handled.
        """
        batch, self.inbox = self.inbox[: self.max_batch], self.inbox[self.max_batch :]
        started = time.perf_counter()
        version_before = self.core.state.version
        outcomes = [(d, self._outcome(d)) for d in batch]
        applied = [o for _, o in outcomes if isinstance(o, Applied)]
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
        return batch

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
            )
        self.failpoints.reached("before-checkpoint")
        self.store.persist(self.core, self.clock.elapsed())
        self.failpoints.reached("after-checkpoint")

    def _settle(self, delivery: Delivery, outcome: Outcome) -> None:
        if isinstance(outcome, Rejected):
            self.publisher.dead_letter(delivery, outcome)
        elif isinstance(outcome, Duplicate):
            self.audit.write(
                "duplicate", update_id=outcome.update_id, commit=self.core.state.commit
            )

    def _ack(self, batch: list[Delivery]) -> None:
        """One ``multiple`` ack for the batch (pika flushes and polls per ack: ~0.5 ms each).

        Only when no model request with a lower tag still awaits its answer,
        or that request would be acknowledged with the batch.
        """
        last = batch[-1].delivery_tag
        oldest_request = self.unanswered_below()
        if oldest_request is None or oldest_request > last:
            self.session.ack(last, multiple=True)
            return
        for delivery in batch:
            self.session.ack(delivery.delivery_tag)

    def _outcome(self, delivery: Delivery) -> Outcome:
        faults = delivery.properties.faults
        if faults:  # before anything reads them: which sender, which content type
            return self.core.reject(Rejected("bad-properties", "; ".join(faults)))
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
        ):  # a refused or forged update says nothing of who is active
            self.active.seen(update.worker_id, self.clock.now())
        return outcome
