"""Claim a data partition on the broker, so that replicas never train on the same one.

A scaled container replica cannot know its index. Each worker therefore
declares the exclusive queue ``{ns}.partition.<i>`` for the first ``i`` it can
get: the broker grants an exclusive queue to one connection only and answers
everyone else with 405 RESOURCE_LOCKED. The claim lasts exactly as long as the
worker's connection: when it stops, crashes or is cut off, the broker deletes
the queue and the partition is free for the next worker that asks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from broker.connection import AmqpSession
from broker.errors import AccessRefused, ResourceLocked
from broker.names import Names
from broker.topology import declare_partition_claim
from runtime.eventlog import EventLog
from training.trainer import Trainer
from worker.metrics import WorkerMetrics

log = logging.getLogger("fedmq.worker")

#: While every partition is claimed, try again this often.
CLAIM_RETRY_SECONDS = 2.0
CLAIM_POLL_SECONDS = 0.2


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
        try:
            declare_partition_claim(session, names, index)
        except AccessRefused as exc:
            raise AccessRefused(
                f"{exc}: a provisioned worker may not declare anything, partition claims included; "
                "give each worker its own --partition-index (claims are for the open guest setup)"
            ) from exc
        except ResourceLocked:
            session.reset_channel()  # 405 closed the channel; the connection and its claims live
            continue
        return index
    return None


class PartitionHolder:
    """The partition this worker trains on, and the trainer for it (built when first claimed)."""

    def __init__(
        self,
        *,
        worker_id: str,
        num_partitions: int,
        index: int | None,
        trainer: Trainer | None,
        trainer_for: Callable[[int], Trainer] | None,
        events: EventLog,
        metrics: WorkerMetrics,
    ) -> None:
        self.worker_id, self.num_partitions = worker_id, num_partitions
        self.index, self.trainer, self.trainer_for = index, trainer, trainer_for
        self.events, self.metrics = events, metrics
        if index is not None:
            metrics.partition.set(index)

    def claim(self, session: AmqpSession, names: Names, stop: threading.Event) -> bool:
        """Hold a partition (our previous one if it is free); stand by while all are taken."""
        standing_by = False
        while not stop.is_set():
            index = claim_partition(session, names, self.num_partitions, prefer=self.index)
            if index is not None:
                self.use(index)
                return True
            if not standing_by:
                standing_by = True
                log.warning(
                    "all %d partitions are claimed by other workers; standing by",
                    self.num_partitions,
                )
                self.events.write("standby", worker_id=self.worker_id)
            deadline = time.monotonic() + CLAIM_RETRY_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                session.process_events(CLAIM_POLL_SECONDS)  # keeps heartbeats flowing
        return False

    def use(self, index: int) -> None:
        if index == self.index and self.trainer is not None:
            return
        if self.index is not None:
            log.warning(
                "partition %d was taken by another worker while we were away; switching to %d",
                self.index,
                index,
            )
        if self.trainer_for is None:
            raise RuntimeError("claim_partition needs trainer_for")
        self.trainer = self.trainer_for(index)
        self.index = index
        self.metrics.partition.set(index)
        self.events.write("partition-claimed", worker_id=self.worker_id, partition=index)
        log.info("worker %s claimed partition %d of %d", self.worker_id, index, self.num_partitions)
