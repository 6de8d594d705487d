"""Time to accuracy: FedAsync and FedBuff against synchronous FedAvg on the same heterogeneous
workers.

Eight workers on a Dirichlet(0.5) split of digits (logistic regression):
six fast, one 5x and one 10x slower (``--delay``: emulated device time per
fit). The workers attach first; the clock is the aggregator's, from its
start to the first evaluation (every version) at or above the target.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench import Context, Row, at_most
from bench.federation import BenchFederation
from bench.procs import Process
from bench.waiting import wait_until

TARGET = 0.90
SPEEDS = [1, 1, 1, 1, 1, 1, 5, 10]
BASE_DELAY = 0.1
STRATEGIES = {
    "fedasync": ["--strategy", "fedasync"],
    "fedbuff": ["--strategy", "fedbuff", "--buffer-size", "4"],
    "fedavg": ["--strategy", "fedavg", "--round-min-workers", str(len(SPEEDS))],
}


def time_to_accuracy(
    ctx: Context, flags: list[str], target: float, max_seconds: float
) -> float | None:
    partitions = ["--num-partitions", str(len(SPEEDS))]
    with BenchFederation(ctx, "tta") as fed:
        workers: list[Process] = []
        for i, speed in enumerate(SPEEDS):
            workers.append(
                fed.worker(
                    f"w{i}",
                    *partitions,
                    "--partition-index",
                    str(i),
                    "--delay",
                    str(BASE_DELAY * speed),
                )
            )
        wait_until(
            lambda: all(fed.attached(f"w{i}") for i in range(len(SPEEDS))),
            120,
            "the workers to attach",
        )
        agg = fed.aggregator(
            *partitions,
            *flags,
            "--target-accuracy",
            str(target),
            "--eval-every",
            "1",
            "--max-seconds",
            str(max_seconds),
        )
        usage = agg.wait(timeout=max_seconds + 120)
        for w in workers:
            w.terminate()
            w.wait(timeout=30)
        if usage.returncode != 0:
            raise RuntimeError(f"aggregator failed: {agg.tail()}")
        evals = [e for e in fed.events("aggregator", "metrics.jsonl") if e["event"] == "eval"]
    return next((e["elapsed"] for e in evals if e.get("accuracy", 0.0) >= target), None)


def run(ctx: Context) -> Iterable[Row]:
    target = 0.8 if ctx.quick else TARGET
    max_seconds = 20.0 if ctx.quick else 180.0
    times = {
        name: time_to_accuracy(ctx, flags, target, max_seconds)
        for name, flags in STRATEGIES.items()
    }
    ctx.log(f"time to {target:.0%}: {times}")
    sync = times["fedavg"]
    for name in ("fedasync", "fedbuff"):
        ours = times[name]
        ratio = ours / sync if ours is not None and sync is not None else None
        label = f"{name} vs fedavg, 8 workers (6 fast, 5x, 10x)"
        yield Row(
            f"time to {target:.0%} accuracy",
            label,
            _seconds(ours),
            f"{_seconds(sync)} (synchronous FedAvg)",
            ratio,
            "<= 0.5x",
            None if ratio is None else at_most(ratio, 0.5),
            STRATEGY_NOTES[name],
        )


STRATEGY_NOTES = {"fedasync": "alpha 0.6, polynomial staleness", "fedbuff": "K = 4"}


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"
