"""Scale: a hundred workers on one aggregator, on this 2-core machine, with a small model.

Workers (threads in a few processes; ``bench.swarm``) emulate 1 s devices
on an IID split of digits; the aggregator runs FedBuff (K = 10). Reported
over the run after a warm-up fifth: update rate against the offered load,
the staleness distribution, and the aggregator's CPU and peak memory.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bench import Context, Row
from bench.federation import BenchFederation
from bench.procs import Process, mb
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
    with BenchFederation(ctx, "scale") as fed:
        swarms = _swarms(ctx, fed, workers, processes, seconds + 120)
        wait_until(
            lambda: all(fed.attached(f"w{i}") for i in range(workers)),
            180,
            f"{workers} workers to attach",
        )
        agg = fed.aggregator(
            "--num-partitions",
            str(workers),
            "--partition",
            "iid",
            "--strategy",
            "fedbuff",
            "--buffer-size",
            "10",
            "--max-seconds",
            str(seconds),
            "--eval-every",
            "20",
        )
        usage = agg.wait(timeout=seconds + 120)
        for swarm in swarms:
            swarm.wait(timeout=60)
        audit = fed.audit()
        summary_rejected = sum(1 for e in audit if e["event"] == "rejected")
    applied = [e for e in audit if e["event"] == "applied"]
    if usage.returncode != 0 or not applied:
        raise RuntimeError(f"scale run failed: {agg.tail()}")
    start, end = applied[0]["time"], applied[-1]["time"]
    warm = start + (end - start) / 5
    window = [e for e in applied if e["time"] >= warm]
    rate = len(window) / max(end - warm, 1e-9)
    offered = workers / DELAY
    staleness = np.array([e["staleness"] for e in window])
    p50, p90, p99 = (float(np.percentile(staleness, q)) for q in (50, 90, 99))
    ctx.log(
        f"scale: {workers} workers, {rate:.1f} upd/s of {offered:.0f} offered, cpu {usage.cpu / usage.wall:.2f} cores"
    )
    case = f"{workers} workers, logreg on digits, FedBuff K=10"
    yield Row(
        "scale",
        f"{case}: update rate",
        f"{rate:.1f} upd/s",
        f"{offered:.0f} upd/s offered",
        rate / offered,
        "",
        None,
        f"{len(window)} updates after warm-up, {summary_rejected} rejected",
    )
    yield Row(
        "scale",
        f"{case}: staleness",
        f"mean {staleness.mean():.1f}, p50 {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {staleness.max()}",
    )
    yield Row(
        "scale",
        f"{case}: aggregator",
        f"{usage.cpu / usage.wall:.2f} cores, peak RSS {mb(usage.peak_rss)}",
        "",
        None,
        "",
        None,
        f"over {usage.wall:.0f} s of process life",
    )
