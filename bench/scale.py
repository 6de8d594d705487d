"""Scale: a hundred workers on one aggregator, on this 2-core machine, with a small model.

Workers (threads in a few processes; ``bench.swarm``) emulate 1 s devices
on an IID split of digits; the aggregator runs FedBuff (K = 10). Reported
over the run after a warm-up fifth: update rate against the offered load,
the staleness distribution, and the aggregator's CPU and peak memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from bench import Context, Row
from bench.federation import BenchFederation
from bench.procs import Process, Usage, mb
from bench.waiting import wait_until

DELAY = 1.0


def _swarms(
    ctx: Context, fed: BenchFederation, workers: int, processes: int, seconds: float
) -> list[Process]:
    per = -(-workers // processes)
    procs = []
    for first in range(0, workers, per):
        args = [
            "--amqp-url",
            ctx.amqp_url,
            "--namespace",
            fed.namespace,
            "--events-dir",
            str(fed.run_dir),
            "--first",
            str(first),
            "--count",
            str(min(per, workers - first)),
            "--num-partitions",
            str(workers),
            "--delay",
            str(DELAY),
            "--seconds",
            str(seconds),
        ]
        procs.append(fed.spawn("bench.swarm", args, f"swarm-{first}"))
    return procs


def run(ctx: Context) -> Iterable[Row]:
    workers, processes, seconds = (10, 1, 10.0) if ctx.quick else (100, 4, 60.0)
    audit, usage, tail = _federate(ctx, workers, processes, seconds)
    applied = [e for e in audit if e["event"] == "applied"]
    if usage.returncode != 0 or not applied:
        raise RuntimeError(f"scale run failed: {tail}")
    rejected = sum(1 for e in audit if e["event"] == "rejected")
    yield from _rows(ctx, workers, applied, rejected, usage)


def _federate(
    ctx: Context, workers: int, processes: int, seconds: float
) -> tuple[list[dict[str, Any]], Usage, str]:
    """``workers`` simulated devices in ``processes`` swarms against one FedBuff aggregator."""
    with BenchFederation(ctx, "scale") as fed:
        swarms = _swarms(ctx, fed, workers, processes, seconds + 120)
        wait_until(
            lambda: all(fed.attached(f"w{i}") for i in range(workers)),
            180,
            f"{workers} workers to attach",
        )
        agg = fed.aggregator(
            *("--num-partitions", str(workers), "--partition", "iid", "--strategy", "fedbuff"),
            *("--buffer-size", "10", "--max-seconds", str(seconds), "--eval-every", "20"),
        )
        usage = agg.wait(timeout=seconds + 120)
        for swarm in swarms:
            swarm.wait(timeout=60)
        return fed.audit(), usage, agg.tail()


def _rows(
    ctx: Context, workers: int, applied: list[dict[str, Any]], rejected: int, usage: Usage
) -> Iterable[Row]:
    start, end = applied[0]["time"], applied[-1]["time"]
    warm = start + (end - start) / 5
    window = [e for e in applied if e["time"] >= warm]
    rate = len(window) / max(end - warm, 1e-9)
    offered = workers / DELAY
    staleness = np.array([e["staleness"] for e in window])
    p50, p90, p99 = (float(np.percentile(staleness, q)) for q in (50, 90, 99))
    cores = usage.cpu / usage.wall
    ctx.log(f"scale: {workers} workers, {rate:.1f} upd/s of {offered:.0f} offered, cpu {cores:.2f}")
    case = f"{workers} workers, logreg on digits, FedBuff K=10"
    after = f"{len(window)} updates after warm-up, {rejected} rejected"
    yield Row("scale", f"{case}: update rate", f"{rate:.1f} upd/s", f"{offered:.0f} upd/s offered",
              rate / offered, "", None, after)  # fmt: skip
    spread = f"p50 {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {staleness.max()}"
    yield Row("scale", f"{case}: staleness", f"mean {staleness.mean():.1f}, {spread}")
    peak = f"{cores:.2f} cores, peak RSS {mb(usage.peak_rss)}"
    lifetime = f"over {usage.wall:.0f} s of process life"
    yield Row("scale", f"{case}: aggregator", peak, "", None, "", None, lifetime)
