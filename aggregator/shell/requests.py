"""Model requests: a worker that attaches asks for the current version and gets it at once."""

from __future__ import annotations

import logging

from aggregator.core.activity import ActiveWorkers
from aggregator.shell.clock import RunClock
from aggregator.shell.publisher import Publisher
from broker.connection import AmqpSession
from broker.delivery import Delivery
from schemas.codec import Limits, decode
from schemas.errors import DecodeError
from schemas.messages import ModelRequest

log = logging.getLogger("fedmq.aggregator")


class ModelRequests:
    """Requests received since the last answer round; each worker is answered once per round."""

    def __init__(
        self,
        session: AmqpSession,
        publisher: Publisher,
        *,
        active: ActiveWorkers,
        limits: Limits,
        clock: RunClock,
    ) -> None:
        self.session = session
        self.publisher = publisher
        self.active = active
        self.limits = limits
        self.clock = clock
        self.pending: list[Delivery] = []

    def receive(self, delivery: Delivery) -> None:
        self.pending.append(delivery)

    def clear(self) -> None:
        """Forget deliveries whose channel died (the broker redelivers them)."""
        self.pending.clear()

    def lowest_tag(self) -> int | None:
        """The delivery tag of the oldest unanswered request (a ``multiple`` ack must stop below
        it).
        """
        return min((d.delivery_tag for d in self.pending), default=None)

    def answer(self) -> None:
        """Send the current version to every worker that asked, then acknowledge the requests."""
        pending, self.pending = self.pending, []
        answered: set[str] = set()
        for delivery in pending:
            request = self._decode(delivery)
            if request is not None:
                self.active.seen(request.worker_id, self.clock.now())
                if request.worker_id not in answered:
                    answered.add(request.worker_id)
                    self.publisher.send_to_worker(request.worker_id)
            self.session.ack(delivery.delivery_tag)

    def _decode(self, delivery: Delivery) -> ModelRequest | None:
        try:
            return decode(
                delivery.body,
                ModelRequest,
                content_type=delivery.properties.content_type,
                limits=self.limits,
            )
        except DecodeError as exc:
            log.info("ignoring an invalid model request: %s", exc)
            return None
