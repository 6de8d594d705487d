"""Queue depths, consumers and rates: from the management API when it answers, passive declares
otherwise.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from broker.connection import AmqpSession
from broker.errors import NotFound, ResourceLocked
from broker.names import Names
from fedmq.status.settings import StatusSettings


@dataclass(frozen=True)
class QueueRow:
    """One queue; ``None`` where the source cannot tell (passive declares know no unacked count or
    rates).
    """

    queue: str
    exists: bool
    ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None
    publish_rate: float | None = None
    deliver_rate: float | None = None


@dataclass(frozen=True)
class QueueTable:
    """The federation's shared queues, plus what can be counted of per-worker ones."""

    source: str  # "management" or "amqp"
    shared: list[QueueRow]
    worker_queues: int | None = None
    claimed_partitions: list[int] | None = None


class ManagementUnavailable(Exception):
    """The management API did not answer usefully (plugin off, wrong credentials, unreachable)."""


def _get_json(url: str, settings: StatusSettings) -> Any:
    """``url``'s JSON; an https:// URL is verified against ``tls_ca_file`` (the broker's CA)."""
    user, password = settings.management_credentials()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    context = (
        ssl.create_default_context(cafile=settings.tls_ca_file)
        if url.startswith("https:")
        else None
    )
    timeout = settings.http_timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310 (operator-given URL)
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ManagementUnavailable(f"{url.split('/api/')[0]}: {exc}") from None


def _rate(stats: dict[str, Any], key: str) -> float:
    return float((stats.get(f"{key}_details") or {}).get("rate", 0.0))


def _row(item: dict[str, Any]) -> QueueRow:
    stats = item.get("message_stats") or {}
    return QueueRow(
        queue=item["name"],
        exists=True,
        ready=item.get("messages_ready"),
        unacked=item.get("messages_unacknowledged"),
        consumers=item.get("consumers"),
        publish_rate=round(_rate(stats, "publish"), 2),
        deliver_rate=round(_rate(stats, "deliver_get"), 2),
    )


def from_management(settings: StatusSettings, base: str) -> QueueTable:
    """Every queue of the namespace in one request."""
    items = _get_json(f"{base}/api/queues/{quote(settings.vhost, safe='')}", settings)
    if not isinstance(items, list):
        raise ManagementUnavailable(f"{base}: unexpected answer to /api/queues")
    names = Names(settings.namespace)
    mine = {
        i["name"]: i
        for i in items
        if isinstance(i, dict) and str(i.get("name", "")).startswith(f"{names.namespace}.")
    }
    shared = [_row(mine[q]) if q in mine else QueueRow(q, exists=False) for q in names.queues()]
    claim = names.claim_prefix
    claimed = sorted(
        int(q[len(claim) :]) for q in mine if q.startswith(claim) and q[len(claim) :].isdigit()
    )
    workers = sum(1 for q in mine if q.startswith(names.worker_queue("")))
    return QueueTable("management", shared, worker_queues=workers, claimed_partitions=claimed)


def from_amqp(session: AmqpSession, names: Names, num_partitions: int | None) -> QueueTable:
    """Passive declares: ready messages and consumers only; partition claims probed when their
    number is known.
    """
    shared = []
    for queue in names.queues():
        try:
            ready, consumers = session.queue_counts(queue)
            shared.append(QueueRow(queue, exists=True, ready=ready, consumers=consumers))
        except NotFound:
            shared.append(QueueRow(queue, exists=False))
            session.reset_channel()  # a 404 closes the channel
    claimed = None if num_partitions is None else probe_claims(session, names, num_partitions)
    return QueueTable("amqp", shared, claimed_partitions=claimed)


def probe_claims(session: AmqpSession, names: Names, num_partitions: int) -> list[int]:
    """Partitions whose claim queue exists (a claim held by another connection answers 405)."""
    claimed = []
    for index in range(num_partitions):
        try:
            session.queue_counts(names.partition_claim(index))
            claimed.append(index)
        except ResourceLocked:
            claimed.append(index)
            session.reset_channel()
        except NotFound:
            session.reset_channel()
    return claimed
