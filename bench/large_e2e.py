"""A large model end to end: the real aggregator and eight real worker processes on the broker.

The workers train ``bench.blob`` (one float32 vector of the model's size, a
seeded step per fit: a fit costs one pass over the model), so the run measures
fedmq moving, validating and applying the model, not learning. They start
first, with no emulated device time, and send as fast as the federation takes
their updates (the results queue's bounds push back); the aggregator runs
FedAsync, every update a version, and stops after a number of versions. Every
body above ``--chunk-bytes`` (15 MiB) travels as a chunk set, both ways.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from aggregator.shell.checkpoint import CHECKPOINT_NAME
from bench import Context
from bench.federation import BenchFederation
from bench.procs import Usage
from bench.waiting import wait_until

WORKERS = 8
#: Loopback crossings of a model-sized body per version, at the least: the update that makes it
#: (worker -> broker -> aggregator) and the version itself to one worker (aggregator -> broker ->
#: worker). Every other worker that fetches it adds one more.
CROSSINGS_PER_VERSION = 4


def wire_limit(bandwidth: float, model_bytes: int) -> float:
    """Versions per second a loopback of ``bandwidth`` bytes/s could carry at the most."""
    return bandwidth / (CROSSINGS_PER_VERSION * model_bytes)


@dataclass(frozen=True)
class EndToEnd:
    """What one end-to-end run did and used."""

    versions: int
    seconds: float
    applied: int
    rejected: dict[str, int]
    aggregator: Usage
    workers: tuple[Usage, ...]
    checkpoint_bytes: int

    @property
    def rate(self) -> float:
        """Versions per second, from the initial model's publish to the last version's."""
        return self.versions / self.seconds

    @property
    def worker_peak(self) -> int:
        """The largest peak RSS any worker reported (0 if none could)."""
        return max((u.peak_rss for u in self.workers), default=0)


def end_to_end(ctx: Context, floats: int, versions: int, max_seconds: float) -> EndToEnd:
    """Eight blob workers and one FedAsync aggregator until ``versions`` versions (or
    ``max_seconds`` of training time).
    """
    partitions = ("--num-partitions", str(WORKERS))
    with BenchFederation(ctx, "large-e2e") as fed:
        workers = [
            fed.worker(f"w{i}", *partitions, "--partition-index", str(i), floats=floats)
            for i in range(WORKERS)
        ]
        wait_until(
            lambda: all(fed.attached(f"w{i}") for i in range(WORKERS)),
            180,
            f"{WORKERS} workers to attach",
        )
        agg = fed.aggregator(
            *("--strategy", "fedasync", *partitions, "--max-versions", str(versions)),
            *("--max-seconds", str(max_seconds), "--eval-every", str(10**9)),
            floats=floats,
        )
        usage = agg.wait(timeout=max_seconds + 300)
        if usage.returncode != 0:
            raise RuntimeError(f"aggregator failed ({usage.returncode}): {agg.tail()}")
        done = tuple(w.wait(timeout=120) for w in workers)  # each stops at the final model
        audit = fed.audit()
        checkpoint = fed.run_dir / "aggregator" / "state" / CHECKPOINT_NAME
        checkpoint_bytes = checkpoint.stat().st_size if checkpoint.exists() else 0
    published = [e for e in audit if e["event"] == "published"]
    top = max(int(e["version"]) for e in published)
    last = next(e for e in published if int(e["version"]) == top)  # not the final's republish
    return EndToEnd(
        versions=top - int(published[0]["version"]),
        seconds=float(last["time"]) - float(published[0]["time"]),
        applied=sum(1 for e in audit if e["event"] == "applied"),
        rejected=dict(Counter(str(e["reason"]) for e in audit if e["event"] == "rejected")),
        aggregator=usage,
        workers=done,
        checkpoint_bytes=checkpoint_bytes,
    )
