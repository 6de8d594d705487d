"""``fedmq status`` as text for a terminal (pure: a snapshot in, lines out)."""

from __future__ import annotations

import time

from fedmq.status.queues import QueueRow, QueueTable
from fedmq.status.snapshot import Snapshot
from schemas.status import StatusReport

#: Staleness buckets shown as bars: (label, lowest, highest inclusive).
STALENESS_BUCKETS = [
    ("0", 0, 0),
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4-7", 4, 7),
    ("8-15", 8, 15),
    ("16+", 16, 1 << 62),
]
BAR_WIDTH = 30
RECENT_SECONDS = 30.0


def _num(value: object, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def queue_lines(table: QueueTable) -> list[str]:
    lines = [f"{'queue':<36} {'ready':>7} {'unacked':>8} {'consumers':>9} {'in/s':>8} {'out/s':>8}"]
    for row in table.shared:
        lines.append(_queue_line(row))
    extra = []
    if table.worker_queues is not None:
        extra.append(f"worker model queues: {table.worker_queues}")
    if table.claimed_partitions is not None:
        claimed = table.claimed_partitions
        extra.append(
            f"partitions claimed: {len(claimed)} {claimed}"
            if claimed
            else "partitions claimed: none (fixed --partition-index)"
        )
    if extra:
        lines.append("  " + "   ".join(extra))
    return lines


def _queue_line(row: QueueRow) -> str:
    if not row.exists:
        return f"{row.queue:<36} {'missing':>7}"
    return (
        f"{row.queue:<36} {_num(row.ready):>7} {_num(row.unacked):>8} {_num(row.consumers):>9} "
        f"{_num(row.publish_rate, '{:.1f}'):>8} {_num(row.deliver_rate, '{:.1f}'):>8}"
    )


def staleness_lines(histogram: dict[int, int]) -> list[str]:
    counts = [
        (label, sum(n for s, n in histogram.items() if lo <= s <= hi))
        for label, lo, hi in STALENESS_BUCKETS
    ]
    total = sum(n for _, n in counts)
    if not total:
        return ["  staleness: no updates applied yet"]
    peak = max(n for _, n in counts)
    return [staleness_bar(label, n, peak, total) for label, n in counts]


def staleness_bar(label: str, n: int, peak: int, total: int) -> str:
    bar = "#" * max(1, round(BAR_WIDTH * n / peak)) if n else ""
    return f"  staleness {label:>5} {bar:<{BAR_WIDTH}} {n:>7} ({100 * n / total:4.1f} %)"


def aggregator_lines(report: StatusReport, age: float) -> list[str]:
    state = (
        f"finished: {report.stopped_because}" if report.finished else f"reported {age:.1f} s ago"
    )
    lines = [
        f"aggregator run {report.run_id} ({report.strategy}, {report.num_partitions} partitions), "
        f"{state}",
        f"version {report.version}   {report.updates_per_s:.1f} updates/s   "
        f"{report.versions_per_s:.1f} versions/s"
        f"   elapsed {report.elapsed:.1f} s   pending {report.pending}",
    ]
    if report.accuracy is not None:
        lines.append(
            f"test accuracy {report.accuracy:.4f}   loss {_num(report.loss, '{:.4f}')}   (version "
            f"{_num(report.eval_version)})"
        )
    if report.epsilon is not None:
        lines.append(f"  privacy budget spent: epsilon {report.epsilon:.3f}{_dp_terms(report)}")
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(report.rejected.items())) or "none"
    lines.append(
        f"applied {report.applied}   duplicates {report.duplicates}   rejected "
        f"{sum(report.rejected.values())} ({rejected})"
    )
    lines.append(f"  staleness mean {report.staleness_mean:.2f}   max {report.staleness_max}")
    lines += staleness_lines(report.staleness_histogram)
    lines += worker_lines(report, report.time)
    return lines


def _dp_terms(report: StatusReport) -> str:
    """`` (distributed DP, delta 1e-05)``: how the epsilon above was earned, when reported."""
    mode, delta = report.extra.get("dp_mode"), report.extra.get("delta")
    if mode is None or not isinstance(delta, float | int):
        return ""
    return f" ({mode} DP, delta {delta:g})"


def worker_lines(report: StatusReport, now: float) -> list[str]:
    recent = sum(1 for w in report.workers if now - w.last_update < RECENT_SECONDS)
    lines = [f"workers: {report.workers_seen} seen, {recent} in the last {RECENT_SECONDS:g} s"]
    if report.workers:
        lines.append(
            f"  {'worker':<28} {'updates':>8} {'last update':>12} "
            f"{'mean staleness':>15} {'mean train s':>13}"
        )
    for w in report.workers:
        ago = f"{max(now - w.last_update, 0.0):.1f} s ago"
        lines.append(
            f"{w.worker_id:<28} {w.updates:>8} {ago:>12} {w.mean_staleness:>15.2f} "
            f"{w.mean_train_seconds:>13.3f}"
        )
    if report.workers_seen > len(report.workers):
        lines.append(f"  ... and {report.workers_seen - len(report.workers)} more")
    return lines


def dead_letter_line(snapshot: Snapshot) -> str:
    dead = snapshot.dead
    if not dead.total:
        return "dead letters: none" if dead.total == 0 else "dead letters: unknown"
    reasons = ", ".join(f"{k} {v}" for k, v in dead.reasons.items()) or "not inspected"
    sample = "" if dead.inspected >= dead.total else f" (reasons of the first {dead.inspected})"
    return f"dead letters: {dead.total}: {reasons}{sample}"


def render(snapshot: Snapshot) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
    source = "management API" if snapshot.queues.source == "management" else "passive declares"
    lines = [
        f"federation {snapshot.namespace!r} on {snapshot.broker} at {when}, queues from {source}"
    ]
    if snapshot.management_error:
        lines.append(f"  (management API unavailable: {snapshot.management_error})")
    lines += queue_lines(snapshot.queues)
    lines.append(dead_letter_line(snapshot))
    if snapshot.report is None:
        lines.append(
            "aggregator: no status report yet (is it running? it reports every progress interval)"
        )
    else:
        lines += aggregator_lines(snapshot.report, snapshot.report_age or 0.0)
    return "\n".join(lines)
