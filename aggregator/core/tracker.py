"""What a run has done: rates, staleness, workers seen, the latest evaluation, the summary.

No I/O; times are passed in (``now`` monotonic, ``wall`` Unix time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from aggregator.core.aggregator import Applied
from aggregator.core.progress import RateMeter, StalenessStats, WorkerSeen
from aggregator.core.reports import PrivacyReport, Progress, Scalar
from aggregator.core.state import AggregatorState
from schemas.messages import MetricValue
from training.trainer import EvalResult

#: A worker counts as recently seen for this long after its last applied update.
RECENT_SECONDS = 30.0


@dataclass
class RunSummary:
    """What a run achieved; written to ``summary.json`` and printed by ``fedmq demo``."""

    run_id: str
    version: int
    elapsed: float
    stopped_because: str
    accuracy: float | None
    loss: float | None
    applied: int
    duplicates: int
    rejected: dict[str, int]
    staleness_mean: float
    staleness_max: int
    stale_share: float
    updates_per_second: float
    versions_per_second: float
    workers: dict[str, dict[str, float]] = field(default_factory=dict)
    privacy: dict[str, Scalar] | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """The global model's quality at one version."""

    version: int
    loss: float
    metrics: dict[str, MetricValue]

    def metric(self, name: str) -> float | None:
        value = self.loss if name == "loss" else self.metrics.get(name)
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )


class RunTracker:
    """Counts and rates of one aggregator process, from the moment it started."""

    def __init__(self, *, version_at_start: int, started: float) -> None:
        self.version_at_start = version_at_start
        self.started = started
        self.update_rate = RateMeter()
        self.version_rate = RateMeter()
        self.staleness = StalenessStats()
        self.workers: dict[str, WorkerSeen] = {}
        self.last_eval: Evaluation | None = None

    def applied(self, o: Applied, now: float, wall: float) -> None:
        self.update_rate.mark(now)
        self.staleness.add(o.staleness)
        seen = self.workers.setdefault(o.worker_id, WorkerSeen())
        seen.updates += 1
        seen.staleness_sum += o.staleness
        seen.train_seconds_sum += o.train_seconds
        seen.last_seen = wall

    def versions(self, count: int, now: float) -> None:
        self.version_rate.mark(now, count)

    def evaluated(self, version: int, result: EvalResult) -> Evaluation:
        self.last_eval = Evaluation(version, result.loss, dict(result.metrics))
        return self.last_eval

    @property
    def last_eval_version(self) -> int | None:
        return self.last_eval.version if self.last_eval is not None else None

    def metric(self, name: str) -> float | None:
        return self.last_eval.metric(name) if self.last_eval is not None else None

    def progress(
        self,
        state: AggregatorState,
        *,
        pending: int,
        elapsed: float,
        now: float,
        wall: float,
        privacy: PrivacyReport | None,
    ) -> Progress:
        c = state.counters
        return Progress(
            version=state.version,
            elapsed=round(elapsed, 3),
            updates_per_s=round(self.update_rate.rate(now), 3),
            versions_per_s=round(self.version_rate.rate(now), 3),
            staleness_mean=round(self.staleness.mean, 4),
            staleness_max=self.staleness.maximum,
            applied=c.applied,
            rejected=sum(c.rejected.values()),
            duplicates=c.duplicates,
            pending=pending,
            workers=sum(1 for w in self.workers.values() if wall - w.last_seen < RECENT_SECONDS),
            accuracy=self.metric("accuracy"),
            loss=self.metric("loss"),
            privacy=privacy,
        )

    def summary(
        self,
        state: AggregatorState,
        *,
        elapsed: float,
        now: float,
        stopped_because: str,
        privacy: PrivacyReport | None,
    ) -> RunSummary:
        c = state.counters
        session_seconds = max(now - self.started, 1e-9)
        return RunSummary(
            run_id=state.run_id,
            version=state.version,
            elapsed=round(elapsed, 3),
            stopped_because=stopped_because,
            accuracy=self.metric("accuracy"),
            loss=self.metric("loss"),
            applied=c.applied,
            duplicates=c.duplicates,
            rejected=dict(c.rejected),
            staleness_mean=round(self.staleness.mean, 4),
            staleness_max=self.staleness.maximum,
            stale_share=round(self.staleness.positive_share(), 4),
            updates_per_second=round(self.staleness.count / session_seconds, 3),
            versions_per_second=round((state.version - self.version_at_start) / session_seconds, 3),
            workers={wid: w.summary() for wid, w in sorted(self.workers.items())},
            privacy=privacy.as_dict() if privacy is not None else None,
        )


def progress_line(p: Progress) -> str:
    """One human line from a ``Progress`` (what ``fedmq demo`` shows once a second)."""
    quality = f"acc {p.accuracy:.4f} loss {p.loss or 0.0:.4f} " if p.accuracy is not None else ""
    epsilon = f" | epsilon {p.privacy.epsilon:.4g}" if p.privacy is not None else ""
    return (
        f"v{p.version:<5d} {quality}| {p.updates_per_s:5.1f} upd/s"
        f" | staleness mean {p.staleness_mean:.2f} max {p.staleness_max}"
        f" | applied {p.applied} rejected {p.rejected} dup {p.duplicates}"
        f" | workers {p.workers}{epsilon}"
    )
