"""The update on its way out: published with a confirm, retried with the same id until confirmed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from broker import chunked
from broker.connection import AmqpSession
from broker.delivery import Properties
from broker.errors import ConnectionLost, MessageTooLarge, PublishFailed
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.retry import backoff_delay
from runtime.eventlog import EventLog
from schemas.messages import ClientUpdate, ModelVersion
from worker.metrics import WorkerMetrics

log = logging.getLogger("fedmq.worker")

MAX_PUBLISH_BACKOFF = 10.0


class Newest(Protocol):
    """Where the newest model version is known (the worker's inbox)."""

    @property
    def latest(self) -> ModelVersion | None: ...


@dataclass
class Outgoing:
    """One encoded update and its publish attempts so far."""

    update: ClientUpdate
    body: bytes
    attempts: int = 0
    not_before: float = 0.0
    #: The body as it goes on the wire (whole, or a chunk set), once prepared for a session.
    prepared: chunked.Outgoing | None = None
    #: Chunks the broker has confirmed: a resumed send starts after them.
    confirmed_parts: int = 0


class Outbox:
    """Holds at most one update until the broker confirms it (or it is given up)."""

    def __init__(
        self, names: Names, inbox: Newest, *, events: EventLog, metrics: WorkerMetrics
    ) -> None:
        self.names, self.events, self.metrics, self.inbox = names, events, metrics, inbox
        self.pending: Outgoing | None = None
        self.confirmed = 0
        self.retries = 0

    def put(self, update: ClientUpdate, body: bytes) -> None:
        self.pending = Outgoing(update, body)

    def due(self, now: float) -> bool:
        return self.pending is not None and now >= self.pending.not_before

    def send(
        self, session: AmqpSession, *, final: bool, partition: int | None
    ) -> ClientUpdate | None:
        """Publish the pending update; the update once it is settled (confirmed or given up).

        ``ConnectionLost`` propagates: after the reconnect the same update (same id) goes again.
        """
        out = self.pending
        if out is None:
            return None
        props = outgoing_properties(out.update, session.username)

        def confirmed(index: int) -> None:
            out.confirmed_parts = index + 1

        try:
            if out.prepared is None:
                out.prepared = chunked.prepare(
                    out.body,
                    chunk_bytes=session.settings.chunk_bytes,
                    max_message_bytes=session.settings.max_message_bytes,
                    set_id=out.update.update_id,
                )
            chunked.publish(
                session,
                self.names.inbox_exchange,
                UPDATE_KEY,
                out.prepared,
                props,
                first=out.confirmed_parts,
                confirmed=confirmed,
            )
        except PublishFailed as exc:
            return self._refused(
                out, exc, final=final, backoff_max=session.settings.connect_backoff_max
            )
        except MessageTooLarge as exc:
            log.error("dropping update %s: %s", out.update.update_id, exc)
            self.events.write("dropped", update_id=out.update.update_id, reason=str(exc))
            return self._settled(out)
        except ConnectionLost:
            out.attempts += 1
            self.retries += 1
            raise
        self._confirmed(out, partition)
        return self._settled(out)

    def _refused(
        self, out: Outgoing, exc: PublishFailed, *, final: bool, backoff_max: float
    ) -> ClientUpdate | None:
        """Abandon (run over), settle (too stale) or keep the update for a retry after a backoff,
        raising ``ConnectionLost`` so that the retry gets a new connection."""
        if final:
            # Training is over: no aggregator will apply it, and a full queue stays full.
            log.info("run finished; abandoning update %s (%s)", out.update.update_id, exc)
            self.events.write("abandoned", update_id=out.update.update_id, reason=str(exc))
            self.pending = None
            return None
        if self._too_stale(out):
            return self._settled(out)
        out.attempts += 1
        self.retries += 1
        self.metrics.publish_retries.inc()
        # The retry goes on a new connection: no longer than the operator lets a reconnect wait.
        delay = backoff_delay(out.attempts, min(MAX_PUBLISH_BACKOFF, backoff_max))
        out.not_before = time.monotonic() + delay
        log.warning(
            "update %s not accepted (%s); retrying in %.1fs", out.update.update_id, exc, delay
        )
        self.events.write("publish-refused", update_id=out.update.update_id, reason=str(exc))
        # RabbitMQ 3.10 can leave a channel nacking every later publish after one nack (seen after
        # a cluster member's loss: three workers refused for a minute while the queue had room).
        # So the retry goes on a fresh connection; the update waits here, with its backoff.
        raise ConnectionLost(f"update {out.update.update_id} nacked; reconnecting to retry it")

    def _confirmed(self, out: Outgoing, partition: int | None) -> None:
        self.confirmed += 1
        self.metrics.updates_confirmed.inc()
        self.metrics.train_seconds.observe(out.update.train_seconds)
        self.events.write(
            "confirmed",
            update_id=out.update.update_id,
            worker_id=out.update.worker_id,
            base_version=out.update.base_version,
            num_examples=out.update.num_examples,
            train_seconds=round(out.update.train_seconds, 4),
            partition=partition,
        )
        log.debug("update %s on v%d confirmed", out.update.update_id, out.update.base_version)

    def _too_stale(self, out: Outgoing) -> bool:
        """Whether a refused update has grown staler than the aggregator takes (then it is given
        up, and said so): retried and confirmed, it would only be refused as too-stale.
        """
        latest = self.inbox.latest
        bound = latest.config.max_staleness if latest is not None else None
        if latest is None or bound is None or latest.version - out.update.base_version <= bound:
            return False
        log.warning(
            "giving up update %s: refused until the model reached v%d, past the staleness bound %d",
            out.update.update_id,
            latest.version,
            bound,
        )
        self.events.write("abandoned", update_id=out.update.update_id, reason="too-stale")
        self.metrics.updates_abandoned.labels("too-stale").inc()
        return True

    def _settled(self, out: Outgoing) -> ClientUpdate:
        self.pending = None
        return out.update


def outgoing_properties(update: ClientUpdate, user_id: str | None) -> Properties:
    """An update's properties; its worker id in a header (a scale-out federation routes on it)."""
    return update_properties(
        update.update_id, user_id, update.base_version, worker_id=update.worker_id
    )
