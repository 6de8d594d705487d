"""Claim a data partition on the broker, so that replicas never train on the same one.

A scaled container replica cannot know its index. Each worker therefore
declares the exclusive queue ``{ns}.partition.<i>`` for the first ``i`` it can
get: the broker grants an exclusive queue to one connection only and answers
everyone else with 405 RESOURCE_LOCKED. The claim lasts exactly as long as the
worker's connection: when it stops, crashes or is cut off, the broker deletes
the queue and the partition is free for the next worker that asks.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.connection import AmqpSession, translated
from broker.errors import ResourceLocked
from broker.names import Names


def claim_order(num_partitions: int, prefer: int | None) -> Iterable[int]:
    """Our previous partition first (after a reconnect), then the lowest free one."""
    if prefer is not None and 0 <= prefer < num_partitions:
        yield prefer
    yield from (i for i in range(num_partitions) if i != prefer)


def claim_partition(
    session: AmqpSession, names: Names, num_partitions: int, *, prefer: int | None = None
) -> int | None:
    """The index of the partition this session now holds, or ``None`` when every one is taken."""
    for index in claim_order(num_partitions, prefer):
        queue = names.partition_claim(index)
        try:
            with translated(f"claim {queue}"):
                # Unbound and x-max-length 0: the queue is a lock, never a mailbox.
                session.channel.queue_declare(
                    queue, exclusive=True, auto_delete=True, arguments={"x-max-length": 0}
                )
        except ResourceLocked:
            session.reset_channel()  # 405 closed the channel; the connection (and any claim) survives
            continue
        return index
    return None
