"""After a connection loss, take the results queue one delivery at a time until the deliveries
that were in flight are through: an update that kills the connection (or the process) is then
the only one charged a delivery for it.

RabbitMQ counts every return of a delivery towards the quorum queue's
delivery limit, including the returns caused by a consumer's connection
dying. With a prefetch of 64, one message that brings the aggregator down
would make the broker dead-letter the 63 honest updates in flight beside it.
So every attachment starts *suspicious*: prefetch 1, until a delivery arrives
that had never been delivered before; a quorum queue hands its returned
messages out before new ones, so by then every returned one has been handled
alone. The consumer is then restarted with the full prefetch (RabbitMQ applies
``basic.qos`` only to consumers started after it).
"""

from __future__ import annotations

from collections.abc import Callable

from broker.connection import AmqpSession
from broker.delivery import Delivery
from schemas.chunks import is_chunk


def delivered_before(delivery: Delivery) -> bool:
    return delivery.redelivered or delivery.delivery_count > 0


class ResultsConsumer:
    """The results queue's consumer: prefetch 1 after every (re)attachment, full once trusted."""

    def __init__(
        self,
        session: AmqpSession,
        queue: str,
        on_delivery: Callable[[Delivery], None],
        *,
        prefetch: int,
    ) -> None:
        self.session, self.queue, self.on_delivery = session, queue, on_delivery
        self.prefetch = prefetch
        self.suspicious = True
        self._tag: str | None = None

    def start(self) -> None:
        """Consume (on a fresh channel); suspicious again, since the channel's unacked deliveries
        went back to the queue. Consumers started after this one get the full prefetch.
        """
        self.suspicious = self.prefetch > 1
        self._consume(1 if self.suspicious else self.prefetch)
        self.session.set_prefetch(self.prefetch)

    @property
    def window(self) -> int:
        """Unacknowledged deliveries the consumer may hold now."""
        return 1 if self.suspicious else self.prefetch

    def settled(self, batch: list[Delivery]) -> None:
        """A batch was handled and acknowledged: if it held a first delivery, trust the queue."""
        if self.suspicious and any(not delivered_before(d) for d in batch):
            self.trust()

    def widen(self, prefetch: int) -> None:
        """Trust the queue and hold up to ``prefetch`` deliveries (a chunk set needs the room)."""
        self.prefetch = max(self.prefetch, prefetch)
        self.trust()

    def trust(self) -> None:
        """Take the full prefetch from now on (a first delivery came, or a chunk set needs it)."""
        self.suspicious = False
        if self._tag is not None:
            self.session.cancel(self._tag)  # its unacked deliveries stay ours to ack
        self._consume(self.prefetch)

    def _consume(self, prefetch: int) -> None:
        """Chunks are handed on as pika reads them (they go to the spool, on disk), so that pika
        never holds the chunk window in memory while the aggregator publishes."""
        self.session.set_prefetch(prefetch)
        self._tag = self.session.consume(self.queue, self.on_delivery, eager=is_chunk)
