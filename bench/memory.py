"""A worker's resident memory beyond its trainer's (the aggregator's peak RSS is measured by
``ingest``).

One worker trains three updates of a blob model against a real aggregator;
its peak RSS is compared with a process that has the same imports and
holds the trainer through one fit, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench import Context, Row
from bench.federation import BenchFederation
from bench.procs import mb
from bench.waiting import wait_until

UPDATES = 3


def run(ctx: Context) -> Iterable[Row]:
    for label, floats in (
        [("4 MB", 1_000_000)] if ctx.quick else [("4 MB", 1_000_000), ("40 MB", 10_000_000)]
    ):
        one = ["--num-partitions", "1"]
        with BenchFederation(ctx, "memory") as fed:
            worker = fed.worker("w0", *one, "--max-updates", str(UPDATES), floats=floats)
            wait_until(lambda: fed.attached("w0"), 120, "the worker to attach")
            agg = fed.aggregator(
                *one, "--strategy", "fedasync", "--max-versions", str(UPDATES), floats=floats
            )
            worker_usage = worker.wait(timeout=300)
            agg.wait(timeout=120)
            if worker_usage.returncode != 0:
                raise RuntimeError(f"worker failed: {worker.tail()}")
            trainer_only = fed.spawn("bench.blob", [], "trainer-only", floats)
            baseline = trainer_only.wait(timeout=120)
        beyond = worker_usage.peak_rss - baseline.peak_rss
        model = floats * 4
        ctx.log(
            f"worker {label}: peak {mb(worker_usage.peak_rss)}, trainer alone "
            f"{mb(baseline.peak_rss)}"
        )
        yield Row(
            "memory: worker RSS beyond its trainer",
            f"{label} model",
            mb(beyond),
            f"trainer alone {mb(baseline.peak_rss)}",
            beyond / model,
            "",
            None,
            f"ratio: extra bytes per model byte; worker peak {mb(worker_usage.peak_rss)}",
        )
