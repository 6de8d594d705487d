"""What a run directory says about a run: evaluations, progress, applied updates (pure reading, no
plotting).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.eventlog import read_events


@dataclass
class RunData:
    """The records ``fedmq report`` draws from, as the aggregator wrote them."""

    run_dir: Path
    evals: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    summary: dict[str, Any] | None = None

    @property
    def start_time(self) -> float | None:
        times = [r["time"] for r in (*self.evals[:1], *self.progress[:1], *self.applied[:1])]
        return min(times, default=None)

    def staleness_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(int(a["staleness"]) for a in self.applied).items()))

    def updates_per_worker(self) -> dict[str, int]:
        return dict(sorted(Counter(str(a["worker_id"]) for a in self.applied).items()))

    def worker_staleness(self) -> dict[str, float]:
        sums: Counter[str] = Counter()
        for a in self.applied:
            sums[str(a["worker_id"])] += int(a["staleness"])
        counts = self.updates_per_worker()
        return {w: sums[w] / n for w, n in counts.items()}


class RunDirError(ValueError):
    """The directory is not a run directory (no metrics or audit log)."""


def load_run(run_dir: str | Path) -> RunData:
    """Read ``metrics.jsonl``, ``audit.jsonl`` and ``summary.json`` (whichever exist; one log is
    required).
    """
    path = Path(run_dir)
    metrics, audit = path / "metrics.jsonl", path / "audit.jsonl"
    if not metrics.exists() and not audit.exists():
        raise RunDirError(
            f"{path} has neither metrics.jsonl nor audit.jsonl: not a fedmq run directory"
        )
    data = RunData(run_dir=path)
    for record in read_events(metrics) if metrics.exists() else ():
        if record.get("event") == "eval":
            data.evals.append(record)
        elif record.get("event") == "progress":
            data.progress.append(record)
    for record in read_events(audit) if audit.exists() else ():
        if record.get("event") == "applied":
            data.applied.append(record)
        elif record.get("event") == "rejected":
            data.rejected[str(record.get("reason", "unknown"))] += 1
    summary = path / "summary.json"
    if summary.exists():
        data.summary = json.loads(summary.read_text())
    return data
