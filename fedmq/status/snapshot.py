"""One look at a federation: queues, the aggregator's latest report, dead letters."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from broker.connection import AmqpSession
from broker.names import Names
from fedmq.status.peek import DeadLetters, dead_letters, latest_status
from fedmq.status.queues import ManagementUnavailable, QueueTable, from_amqp, from_management
from fedmq.status.settings import StatusSettings
from schemas.status import StatusReport


@dataclass(frozen=True)
class Snapshot:
    namespace: str
    broker: str
    taken_at: float
    queues: QueueTable
    report: StatusReport | None
    dead: DeadLetters
    management_error: str | None = None

    @property
    def report_age(self) -> float | None:
        return None if self.report is None else max(self.taken_at - self.report.time, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "broker": self.broker,
            "taken_at": round(self.taken_at, 3),
            "report_age": None if self.report_age is None else round(self.report_age, 3),
            "queues": dataclasses.asdict(self.queues),
            "aggregator": None if self.report is None else self.report.model_dump(mode="json"),
            "dead_letters": dataclasses.asdict(self.dead),
            "management_error": self.management_error,
        }


def _queue_table(
    settings: StatusSettings, session: AmqpSession, names: Names, report: StatusReport | None
) -> tuple[QueueTable, str | None]:
    base = settings.management_base()
    if base is not None:
        try:
            return from_management(settings, base), None
        except ManagementUnavailable as exc:
            error = str(exc)
    else:
        error = None
    return from_amqp(session, names, report.num_partitions if report else None), error


def take_snapshot(settings: StatusSettings, session: AmqpSession) -> Snapshot:
    """Everything ``fedmq status`` shows, read through an open session (and the management API if it
    answers).
    """
    names = Names(settings.namespace)
    report = latest_status(session, names)
    queues, error = _queue_table(settings, session, names, report)
    dead_row = next(r for r in queues.shared if r.queue == names.dead_queue)
    dead_total = None if dead_row.ready is None else dead_row.ready + (dead_row.unacked or 0)
    dead = dead_letters(session, names, settings.dead_sample, dead_total)
    return Snapshot(
        namespace=settings.namespace,
        broker=f"{settings.masked_url()} ({session.server_product})",
        taken_at=time.time(),
        queues=queues,
        report=report,
        dead=dead,
        management_error=error if settings.management_url != "auto" else None,
    )
