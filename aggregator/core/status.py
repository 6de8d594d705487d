"""Build the status report the aggregator publishes to ``{ns}.status`` (pure: time is passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aggregator.core.progress import WorkerSeen
from schemas.status import Scalar, StatusReport, WorkerStatus

#: Workers listed in a report: the most recently seen, so the message stays small.
MAX_WORKERS_LISTED = 100
#: Progress fields that have a place of their own in the report.
KNOWN_FIELDS = frozenset(
    {
        "version",
        "elapsed",
        "updates_per_s",
        "versions_per_s",
        "staleness_mean",
        "staleness_max",
        "applied",
        "rejected",
        "duplicates",
        "pending",
        "workers",
        "accuracy",
        "loss",
        "epsilon",
    }
)


def worker_rows(
    workers: Mapping[str, WorkerSeen], limit: int = MAX_WORKERS_LISTED
) -> list[WorkerStatus]:
    """The ``limit`` most recently seen workers, newest first."""
    recent = sorted(workers.items(), key=lambda kv: kv[1].last_seen, reverse=True)[:limit]
    return [
        WorkerStatus(
            worker_id=wid,
            updates=w.updates,
            last_update=round(w.last_seen, 3),
            mean_staleness=round(w.mean_staleness, 3),
            mean_train_seconds=round(w.mean_train_seconds, 4),
        )
        for wid, w in recent
    ]


def _extra(fields: Mapping[str, Any]) -> dict[str, Scalar]:
    return {
        k: v
        for k, v in fields.items()
        if k not in KNOWN_FIELDS and isinstance(v, (int, float, str, bool, type(None)))
    }


def build_status(
    *,
    run_id: str,
    strategy: str,
    num_partitions: int,
    now: float,
    fields: Mapping[str, Any],
    rejected: Mapping[str, int],
    staleness_histogram: Mapping[int, int],
    workers: Mapping[str, WorkerSeen],
    eval_version: int | None,
    finished: bool,
    stopped_because: str,
) -> StatusReport:
    """The report for one moment, from the service's progress fields and counters."""
    epsilon = fields.get("epsilon")
    return StatusReport(
        run_id=run_id,
        time=round(now, 3),
        strategy=strategy,
        num_partitions=num_partitions,
        version=int(fields["version"]),
        elapsed=float(fields["elapsed"]),
        updates_per_s=float(fields["updates_per_s"]),
        versions_per_s=float(fields["versions_per_s"]),
        applied=int(fields["applied"]),
        duplicates=int(fields["duplicates"]),
        rejected={k: int(v) for k, v in rejected.items() if v},
        pending=int(fields.get("pending") or 0),
        staleness_histogram=dict(sorted(staleness_histogram.items())),
        staleness_mean=float(fields["staleness_mean"]),
        staleness_max=int(fields["staleness_max"]),
        accuracy=fields.get("accuracy"),
        loss=fields.get("loss"),
        eval_version=eval_version,
        epsilon=float(epsilon) if epsilon is not None else None,
        workers_seen=len(workers),
        workers=worker_rows(workers),
        finished=finished,
        stopped_because=stopped_because,
        extra=_extra(fields),
    )
