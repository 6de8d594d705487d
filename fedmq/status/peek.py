"""Read the aggregator's latest status report and the dead letters' reasons, putting every message
back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import NotFound
from broker.names import Names
from broker.properties import REASON_HEADER
from schemas.errors import DecodeError
from schemas.status import StatusReport, decode_status

#: A reader that holds the report while the aggregator publishes a new one briefly sees two.
STATUS_PEEK = 4


@dataclass(frozen=True)
class DeadLetters:
    """Dead-lettered messages counted by reason (of the first ``inspected`` in the queue)."""

    total: int | None
    inspected: int
    reasons: dict[str, int] = field(default_factory=dict)


def newest_report(deliveries: list[Delivery]) -> StatusReport | None:
    """The most recent decodable report among the peeked messages."""
    reports = []
    for delivery in deliveries:
        try:
            reports.append(decode_status(delivery.body))
        except DecodeError:
            continue
    return max(reports, key=lambda r: r.time, default=None)


def latest_status(session: AmqpSession, names: Names) -> StatusReport | None:
    try:
        return newest_report(session.peek(names.status_queue, STATUS_PEEK))
    except NotFound:
        session.reset_channel()
        return None


def dead_letter_reason(headers: Mapping[str, Any]) -> str:
    """fedmq's own reason header, else the broker's (``x-death``: delivery_limit, maxlen, expired,
    rejected).
    """
    reason = headers.get(REASON_HEADER)
    if isinstance(reason, (bytes, str)):
        return reason.decode() if isinstance(reason, bytes) else reason
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        broker_reason = deaths[0].get("reason")
        if isinstance(broker_reason, bytes):
            broker_reason = broker_reason.decode()
        if broker_reason:
            return f"broker:{broker_reason}"
    return "unknown"


def count_reasons(deliveries: list[Delivery]) -> dict[str, int]:
    return dict(Counter(dead_letter_reason(d.properties.headers) for d in deliveries).most_common())


def dead_letters(session: AmqpSession, names: Names, sample: int, total: int | None) -> DeadLetters:
    if sample == 0 or not total:
        return DeadLetters(total=total, inspected=0)
    try:
        got = session.peek(names.dead_queue, sample)
    except NotFound:
        session.reset_channel()
        return DeadLetters(total=None, inspected=0)
    return DeadLetters(total=total, inspected=len(got), reasons=count_reasons(got))
