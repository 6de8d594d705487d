"""The AMQP properties each kind of fedmq message carries (see docs/protocol.md)."""

from __future__ import annotations

import time

from broker.delivery import Properties
from schemas.codec import CONTENT_TYPE
from schemas.messages import SCHEMA_VERSION
from schemas.status import STATUS_CONTENT_TYPE

SCHEMA_HEADER = "fedmq-schema"
REASON_HEADER = "x-fedmq-reason"
DETAIL_HEADER = "x-fedmq-detail"
ORIGINAL_USER_HEADER = "x-fedmq-original-user-id"
DROPPED_BODY_HEADER = "x-fedmq-dropped-body-bytes"
DROPPED_HEADERS_HEADER = "x-fedmq-dropped-headers"
BASE_VERSION_HEADER = "fedmq-base-version"
#: The sending worker's id on an update: what the edges' consistent-hash exchange hashes on.
WORKER_HEADER = "fedmq-worker"
#: The only headers of a rejected message a dead letter keeps: the ones a fedmq sender sets. Any
#: other (``x-fedmq-*`` above all, or ``x-death`` and ``x-first-death-*``, which the broker adds
#: only when absent) would read as ours or the broker's in the dead-letter queue.
KEPT_ORIGINAL_HEADERS = frozenset({SCHEMA_HEADER, BASE_VERSION_HEADER})
REQUEST_TTL_MS = 60_000


def update_properties(
    update_id: str, user_id: str | None, base_version: int, *, worker_id: str | None = None
) -> Properties:
    """A worker's update: persistent, deduplicated by ``message_id``, ``user_id`` validated by the
    broker; ``worker_id`` in a header (a scale-out federation routes on it).
    """
    headers: dict[str, object] = {SCHEMA_HEADER: SCHEMA_VERSION, BASE_VERSION_HEADER: base_version}
    if worker_id is not None:
        headers[WORKER_HEADER] = worker_id
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=update_id,
        user_id=user_id,
        type="fedmq.update",
        timestamp=int(time.time()),
        headers=headers,
        persistent=True,
    )


def model_properties(version: int, user_id: str | None = None) -> Properties:
    """A model version: transient (the checkpoint is what persists); ``user_id`` validated by the
    broker, so workers can tell the aggregator's models from anyone else's.
    """
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=f"model-{version}",
        user_id=user_id,
        type="fedmq.model",
        timestamp=int(time.time()),
        headers={SCHEMA_HEADER: SCHEMA_VERSION, "fedmq-version": version},
        persistent=False,
    )


def secure_upload_properties(buffer_id: str, stage: str, user_id: str) -> Properties:
    """A worker's secure-aggregation message: persistent, ``user_id`` validated by the broker."""
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=f"secure-{buffer_id}-{stage}-{user_id}",
        user_id=user_id,
        type="fedmq.secure-upload",
        timestamp=int(time.time()),
        headers={SCHEMA_HEADER: SCHEMA_VERSION},
        persistent=True,
    )


def secure_round_properties(buffer_id: str, stage: str, user_id: str | None) -> Properties:
    """One stage of a secure buffer, broadcast: transient like a model version, and like it from
    the aggregator's broker-validated user (workers ignore rounds from anyone else)."""
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=f"round-{buffer_id}-{stage}",
        user_id=user_id,
        type="fedmq.secure-round",
        timestamp=int(time.time()),
        headers={SCHEMA_HEADER: SCHEMA_VERSION},
        persistent=False,
    )


def status_properties() -> Properties:
    """The aggregator's status report: JSON, transient (it is replaced every progress interval)."""
    return Properties(
        content_type=STATUS_CONTENT_TYPE,
        message_id=f"status-{time.time_ns()}",
        type="fedmq.status",
        timestamp=int(time.time()),
        headers={SCHEMA_HEADER: 1},
        persistent=False,
    )


def request_properties(worker_id: str, user_id: str | None) -> Properties:
    """A model request: transient and short-lived; a lost one is simply sent again."""
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=f"request-{worker_id}-{time.time_ns()}",
        user_id=user_id,
        type="fedmq.request",
        timestamp=int(time.time()),
        headers={SCHEMA_HEADER: SCHEMA_VERSION},
        persistent=False,
        expiration_ms=REQUEST_TTL_MS,
    )


def dead_letter_properties(
    original: Properties, reason: str, detail: str, *, dropped_body_bytes: int | None = None
) -> Properties:
    """The original properties plus the rejection reason; of the original headers only those a
    fedmq sender sets (``KEPT_ORIGINAL_HEADERS``), with a count of the others dropped.

    ``user_id`` moves into a header: republished with the aggregator's
    connection, the broker would refuse a ``user_id`` that is not ours.
    """
    headers = {k: v for k, v in original.headers.items() if k in KEPT_ORIGINAL_HEADERS}
    dropped = len(original.headers) - len(headers)
    if dropped:
        headers[DROPPED_HEADERS_HEADER] = dropped
    headers[REASON_HEADER] = reason
    headers[DETAIL_HEADER] = detail[:1000]
    if original.user_id is not None:
        headers[ORIGINAL_USER_HEADER] = original.user_id
    if dropped_body_bytes is not None:
        headers[DROPPED_BODY_HEADER] = dropped_body_bytes
    return Properties(
        content_type=original.content_type,
        message_id=original.message_id,
        type=original.type,
        timestamp=original.timestamp,
        headers=headers,
        persistent=True,
    )
