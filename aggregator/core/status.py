"""Build the status report the aggregator publishes to ``{ns}.status`` (pure: time is passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aggregator.core.progress import WorkerSeen
from aggregator.core.reports import Progress
from schemas.status import Scalar, StatusReport, WorkerStatus

#: Workers listed in a report: the most recently seen, so the message stays small.
MAX_WORKERS_LISTED = 100


@dataclass(frozen=True)
class RunIdentity:
    """What a status report says about the run itself, beside its progress."""

    run_id: str
    strategy: str
    num_partitions: int
    finished: bool = False
    stopped_because: str = ""
    extra: Mapping[str, Scalar] = field(default_factory=dict)


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


def extra_fields(progress: Progress, run: RunIdentity) -> dict[str, Scalar]:
    """Fields without a place of their own in the report: DP's delta, clip and mode, and the run's
    own."""
    extra: dict[str, Scalar] = dict(run.extra)
    if progress.privacy is not None:
        extra.update(
            delta=progress.privacy.delta,
            dp_clip=progress.privacy.clip,
            dp_mode=progress.privacy.mode,
        )
    return extra


def build_status(
    progress: Progress,
    run: RunIdentity,
    *,
    now: float,
    rejected: Mapping[str, int],
    staleness_histogram: Mapping[int, int],
    workers: Mapping[str, WorkerSeen],
    eval_version: int | None,
) -> StatusReport:
    """The report for one moment, from the run's progress and counters."""
    return StatusReport(
        run_id=run.run_id,
        time=round(now, 3),
        strategy=run.strategy,
        num_partitions=run.num_partitions,
        version=progress.version,
        elapsed=progress.elapsed,
        updates_per_s=progress.updates_per_s,
        versions_per_s=progress.versions_per_s,
        applied=progress.applied,
        duplicates=progress.duplicates,
        rejected={k: int(v) for k, v in rejected.items() if v},
        pending=progress.pending,
        staleness_histogram=dict(sorted(staleness_histogram.items())),
        staleness_mean=progress.staleness_mean,
        staleness_max=progress.staleness_max,
        accuracy=progress.accuracy,
        loss=progress.loss,
        eval_version=eval_version,
        epsilon=progress.privacy.epsilon if progress.privacy is not None else None,
        workers_seen=len(workers),
        workers=worker_rows(workers),
        finished=run.finished,
        stopped_because=run.stopped_because,
        extra=extra_fields(progress, run),
    )
