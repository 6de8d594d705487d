"""Everything the aggregator sends: model versions, answers to model requests, status, dead letters.

A version's body is encoded once and reused for every worker that asks for
it. Every publish that matters waits for the broker's confirm.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.validation import Rejected
from aggregator.shell.final_model import clear_final, keep_final
from aggregator.shell.observer import Observer
from broker import chunked
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import ConnectionLost, PublishFailed
from broker.names import BROADCAST_KEY, Names, worker_key
from broker.properties import dead_letter_properties, model_properties, status_properties
from runtime.background import BackgroundTask
from runtime.eventlog import EventLog
from schemas.codec import encode_parts
from schemas.messages import ModelVersion, TrainConfig
from schemas.pieces import Pieces

log = logging.getLogger("fedmq.aggregator")

#: Late updates are a normal part of asynchronous training: recorded in the audit log and dropped,
#: not copied to the dead-letter queue. After a restart they can arrive by the thousand; a confirmed
#: dead-letter publish each made rejecting them 5x slower than applying updates (python -m
#: bench.reliability throughput), and they would push out the malformed messages that queue is for.
LATE_REJECTIONS = frozenset({"too-stale", "after-final"})


def digest(weights: dict[str, np.ndarray]) -> str:
    """Short content digest of a model, to prove a version names one set of weights."""
    h = hashlib.sha256()  # twice blake2b's speed where the CPU has SHA extensions
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).view(np.uint8).reshape(-1).data)
    return h.hexdigest()[:32]


def unconfirmed(what: str, exc: PublishFailed) -> ConnectionLost:
    """A nack on a cluster means a member did not take its copy (it died or froze): an outage.

    The service reattaches (to another member if need be) and republishes the version; the
    batch behind it was not acked, so it is redelivered and deduplicated.
    """
    return ConnectionLost(f"{what} not confirmed ({exc})")


class Publisher:
    """The aggregator's outgoing side, on the aggregator's session."""

    def __init__(
        self,
        session: AmqpSession,
        names: Names,
        core: Aggregator,
        *,
        audit: EventLog,
        observer: Observer,
        config: Callable[[], TrainConfig],
        max_message_bytes: int,
        audit_digests: bool,
    ) -> None:
        self.session = session
        self.names = names
        self.core = core
        self.audit = audit
        self.observer = observer
        self.config = config
        self.max_message_bytes = max_message_bytes
        self.audit_digests = audit_digests
        self._body: tuple[int, bool, chunked.Outgoing] | None = None

    def model_body(self, final: bool) -> chunked.Outgoing:
        """The encoded current version, cut into chunks if it must be (built once per version).

        A chunked version is not encoded as one body: its chunks are cut from views of the
        model's arrays as they are sent. That holds because the weights change only in a step,
        and every step makes a new version (so a new body).
        """
        state = self.core.state
        if self._body is None or self._body[0] != state.version or self._body[1] != final:
            self._body = None  # let the old version's body go before the new one is built
            message = ModelVersion(
                run_id=state.run_id,
                version=state.version,
                created_at=time.time(),
                final=final,
                config=self.config(),
                arrays=state.weights,
            )
            out = chunked.prepare(
                Pieces(encode_parts(message)),
                chunk_bytes=self.session.settings.chunk_bytes,
                max_message_bytes=self.max_message_bytes,
                set_id=f"{state.run_id}.v{state.version}{'.final' if final else ''}",
            )
            self._body = (state.version, final, out)
        return self._body[2]

    def publish_on_attach(self) -> None:
        """The current version (final if the run has ended); a run in progress first empties
        ``<ns>.final`` of an earlier run's final model."""
        finished = self.core.state.finished
        if not finished:
            clear_final(self.session, self.names)
        self.publish_version(final=finished)

    def publish_version(self, *, final: bool) -> None:
        """Broadcast the current version (confirmed) and record it, with its digest, in the audit
        log.
        """
        state = self.core.state
        body = self.model_body(final)
        weights = state.weights
        # hashlib drops the GIL: the digest is computed while the publish waits for its confirm
        hashing = (
            BackgroundTask(lambda: digest(weights), name="digest").start()
            if self.audit_digests
            else None
        )
        props = model_properties(state.version, self.session.username)
        try:
            chunked.publish(
                self.session,
                self.names.models_exchange,
                BROADCAST_KEY,
                body,
                props,
                mandatory=False,
            )
            if final:
                keep_final(self.session, self.names, body, props)
        except PublishFailed as exc:
            raise unconfirmed(f"broadcast of v{state.version}", exc) from exc
        self.core.count_published()
        self.observer.published(state.version)
        fields: dict[str, Any] = {"version": state.version, "final": final}
        noise = self.core.strategy.noise_mark()
        if noise is not None:
            fields["noise"] = noise
        if hashing is not None:
            hashing.wait()
            fields["digest"] = hashing.result()
        self.audit.write("published", **fields)

    def send_to_worker(self, worker_id: str) -> None:
        """The current version to one worker (the answer to its model request)."""
        state = self.core.state
        body = self.model_body(state.finished)
        try:
            chunked.publish(
                self.session,
                self.names.models_exchange,
                worker_key(worker_id),
                body,
                model_properties(state.version, self.session.username),
            )
        except PublishFailed as exc:
            log.debug("worker %s went away before its model arrived (%s)", worker_id, exc)

    def publish_status(self, report: bytes) -> None:
        """The latest status report, for ``fedmq status`` (a lost one is replaced next tick)."""
        try:
            self.session.publish(
                self.names.status_exchange, "", report, status_properties(), mandatory=False
            )
        except PublishFailed as exc:
            log.debug("status report not published (%s)", exc)

    def dead_letter(
        self, delivery: Delivery, rejected: Rejected, *, dropped_body_bytes: int | None = None
    ) -> None:
        """Copy a rejected update to the dead-letter queue with its reason (late ones are only
        audited). ``dropped_body_bytes``: the body was not kept (a chunk set's), only its size.
        """
        late = rejected.reason in LATE_REJECTIONS
        if not late:
            body = delivery.body
            oversize = len(body) > self.max_message_bytes
            if oversize:
                dropped_body_bytes = len(body)
            props = dead_letter_properties(
                delivery.properties,
                rejected.reason,
                rejected.detail,
                dropped_body_bytes=dropped_body_bytes,
            )
            # An oversize body is not kept: the reason says enough, and the dead-letter queue stays
            # small.
            try:
                kept = b"" if oversize else bytes(body)  # pika publishes bytes, not views
                self.session.publish(self.names.dead_exchange, "", kept, props, mandatory=True)
            except PublishFailed as exc:
                raise unconfirmed(f"dead letter {delivery.properties.message_id}", exc) from exc
        self.audit.write(
            "rejected",
            message_id=delivery.properties.message_id,
            user_id=delivery.properties.user_id,
            update_id=rejected.update_id,
            worker_id=rejected.worker_id,
            reason=rejected.reason,
            detail=rejected.detail[:300],
            dead_lettered=not late,
        )
        level = logging.DEBUG if late else logging.INFO
        log.log(
            level,
            "rejected %s: %s (%s)",
            delivery.properties.message_id,
            rejected.reason,
            rejected.detail,
        )
