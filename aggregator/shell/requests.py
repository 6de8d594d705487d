"""Model requests: a worker that attaches asks for the current version and gets it at once.

A request is answered only if its sender passes the identity policy (strict:
the broker-validated ``user_id`` is a provisioned worker and names itself),
and at most once per worker per ``AnswerLimiter`` interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aggregator.core.activity import ActiveWorkers
from aggregator.core.answers import AnswerLimiter
from aggregator.core.identity import IdentityPolicy, check_claim, check_sender
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
        identity: Callable[[], IdentityPolicy] | None = None,
        limiter: AnswerLimiter | None = None,
    ) -> None:
        self.session = session
        self.publisher = publisher
        self.active = active
        self.limits = limits
        self.clock = clock
        # The core's policy as the roster says now (it changes when the roster file does).
        self.identity = identity or (lambda: publisher.core.identity)
        self.limiter = limiter or AnswerLimiter()
        self.pending: list[Delivery] = []
        self.refused = 0  # requests whose sender failed the identity policy
        self.limited = 0  # requests not answered because the worker was answered just before

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
        for delivery in pending:
            request = self._admitted(delivery)
            if request is not None:
                now = self.clock.now()
                self.active.seen(request.worker_id, now)
                if self.limiter.allow(request.worker_id, now):
                    self.publisher.send_to_worker(request.worker_id)
                else:
                    self.limited += 1
            self.session.ack(delivery.delivery_tag)

    def _admitted(self, delivery: Delivery) -> ModelRequest | None:
        """The request, if it decodes and its sender may ask as the worker it names."""
        policy, user_id = self.identity(), delivery.properties.user_id
        if check_sender(policy, user_id) is not None:
            self.refused += 1
            return None
        request = self._decode(delivery)
        if request is not None and check_claim(policy, user_id, request.worker_id) is not None:
            self.refused += 1
            return None
        return request

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
