"""Large models (issue 17): 11M parameters (44 MB, ResNet-18's size) and 25M (100 MB).

``python -m bench --only large`` (or ``python -m bench.large [--floats N,...]``, one size
after the other). For each size, every figure beside a baseline timed in the same minutes:

* **ingest**: the aggregator of ``bench.ingest`` draining a prefilled results
  queue, the updates sent as chunk sets (``--chunk-bytes`` 15 MiB, what workers
  send) and, in a federation of its own, as whole messages (versions published
  whole too), against the fair pika relay (``bench/relay.py --fair``, whole
  messages); the aggregator's peak RSS in both against 2 x model + 150 MB;
* **checkpoint**: one ``save_checkpoint`` (with its two fsyncs) against a plain
  write + fsync of the same bytes (``bench.checkpoint_cost``);
* **end to end**: the aggregator and eight real worker processes
  (``bench.large_e2e``), versions per second against what the loopback could
  carry (a plain TCP copy's bandwidth, ``bench.loopback``, over 4 model-sized
  crossings per version); the aggregator's and the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aggregator.shell.intake import auto_prefetch
from bench import Context, Row, at_least, at_most
from bench.checkpoint_cost import CheckpointCost, checkpoint_cost
from bench.federation import BenchFederation
from bench.ingest import aggregator_rate, relay_rate, rss_limit
from bench.large_e2e import CROSSINGS_PER_VERSION, EndToEnd, end_to_end, wire_limit
from bench.loopback import socket_copy
from bench.procs import Usage, mb
from bench.table import markdown
from bench.timing import best_seconds

WHOLE = ("--chunk-bytes", str(256 << 20))  # the bench federation's message limit: never chunked
LOOPBACK_BYTES = 256 << 20


@dataclass(frozen=True)
class Case:
    """One model size and how much of it each part runs."""

    floats: int
    ingest_updates: int
    versions: int
    max_seconds: float

    @property
    def label(self) -> str:
        return f"{self.floats / 1e6:g}M params ({mb(self.floats * 4)})"

    @property
    def model_bytes(self) -> int:
        return self.floats * 4


CASES = [Case(11_000_000, 16, 24, 150.0), Case(25_000_000, 12, 12, 180.0)]
QUICK_CASES = [Case(4_000_000, 4, 4, 60.0)]


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run(ctx: Context) -> Iterable[Row]:
    for case in QUICK_CASES if ctx.quick else CASES:
        yield from measure(ctx, case)


def measure(ctx: Context, case: Case) -> Iterator[Row]:
    ctx.log(f"large {case.label}: ingest ({load()})")
    ingest = yield from ingest_rows(ctx, case)
    ctx.log(f"large {case.label}: checkpoint ({load()})")
    cost = checkpoint_cost(ctx.scratch(f"checkpoint-{case.floats}"), case.floats)
    yield checkpoint_row(case, cost)
    ctx.log(f"large {case.label}: end to end ({load()})")
    payload = memoryview(bytearray(LOOPBACK_BYTES))
    wire = best_seconds(lambda: socket_copy(payload), 3)
    result = end_to_end(ctx, case.floats, case.versions, case.max_seconds)
    yield from e2e_rows(case, result, LOOPBACK_BYTES / wire, ingest)


def ingest_rows(ctx: Context, case: Case) -> Generator[Row, None, float]:
    """The ingest rows; returns the chunked ingest rate (the end-to-end row's second baseline)."""
    prefetch = auto_prefetch({"w": np.zeros(case.floats, np.float32)})
    count = case.ingest_updates
    with BenchFederation(ctx, "large-ingest") as fed:
        relay = relay_rate(fed, case.floats, count, prefetch, fair=True)
        chunked, chunked_usage = aggregator_rate(fed, case.floats, count, chunks=True)
    with BenchFederation(ctx, "large-whole") as fed:  # a state directory of its own
        whole, whole_usage = aggregator_rate(fed, case.floats, count, *WHOLE)
    ctx.log(
        f"ingest {case.label}: chunked {chunked:.2f} upd/s, whole {whole:.2f} upd/s, fair relay "
        f"{relay:.2f} msg/s, peak RSS {mb(chunked_usage.peak_rss)} / {mb(whole_usage.peak_rss)}"
    )
    note = f"{count} updates, prefetch {prefetch}, {load()}"
    for how, rate, usage in (("chunked", chunked, chunked_usage), ("whole", whole, whole_usage)):
        yield Row(
            "large: ingest",
            f"{case.label}, {how}",
            f"{rate:.2f} upd/s",
            f"{relay:.2f} msg/s (fair pika relay, whole)",
            rate / relay,
            ">= 0.9x",
            at_least(rate / relay, 0.9),
            note,
        )
        yield rss_row(f"large: aggregator peak RSS, ingest {how}", case, usage, note)
    return chunked


def rss_row(benchmark: str, case: Case, usage: Usage, note: str) -> Row:
    limit = rss_limit(case.model_bytes)
    return Row(
        benchmark,
        case.label,
        mb(usage.peak_rss),
        f"2 x model + 150 MB = {mb(limit)}",
        usage.peak_rss / limit,
        "<= 1x",
        at_most(usage.peak_rss / limit, 1.0),
        note,
    )


def checkpoint_row(case: Case, cost: CheckpointCost) -> Row:
    ours, plain = cost.checkpoint, cost.plain
    return Row(
        "large: checkpoint write",
        case.label,
        f"{ours.seconds:.3f} s for {mb(ours.nbytes)} ({ours.bytes_per_second / 1e6:.0f} MB/s)",
        f"{plain.seconds:.3f} s (plain write + fsync, {plain.bytes_per_second / 1e6:.0f} MB/s)",
        cost.ratio,
        "",
        None,
        f"ratio: time over the plain write's, best of 3; {load()}",
    )


def e2e_rows(case: Case, result: EndToEnd, bandwidth: float, ingest: float) -> Iterator[Row]:
    limit = wire_limit(bandwidth, case.model_bytes)
    note = (
        f"{result.rate / ingest:.2f}x the aggregator's chunked ingest alone ({ingest:.2f} upd/s); "
        f"{result.versions} versions in {result.seconds:.1f} s, {result.applied} applied, "
        f"{rejected_text(result.rejected)}, checkpoint {mb(result.checkpoint_bytes)}; {load()}"
    )
    yield Row(
        "large: end to end, 8 workers",
        f"{case.label}, FedAsync",
        f"{result.rate:.3f} versions/s",
        f"{limit:.2f} versions/s (loopback {bandwidth / 1e9:.2f} GB/s / "
        f"{CROSSINGS_PER_VERSION} x model)",
        result.rate / limit,
        "",
        None,
        note,
    )
    yield rss_row("large: aggregator peak RSS, 8 live workers", case, result.aggregator, note)
    peaks = sorted(u.peak_rss for u in result.workers if u.peak_rss)
    spread = f"{mb(peaks[0])}-{mb(peaks[-1])} over {len(peaks)} workers" if peaks else "none"
    yield Row(
        "large: worker peak RSS, 8 live workers",
        case.label,
        mb(result.worker_peak),
        f"2 x model + 150 MB = {mb(rss_limit(case.model_bytes))} (reference, no floor)",
        result.worker_peak / rss_limit(case.model_bytes),
        "",
        None,
        spread,
    )


def rejected_text(reasons: dict[str, int]) -> str:
    """``"12 rejected (stale 10, late 2)"``, or ``"0 rejected"``."""
    total = sum(reasons.values())
    if not total:
        return "0 rejected"
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"{total} rejected ({detail})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__)
    parser.add_argument("--floats", default="", help="Comma-separated sizes (default: 11M,25M).")
    parser.add_argument("--quick", action="store_true", help="One 16 MB case, a few updates.")
    parser.add_argument("--output", help="Also write the markdown table to this file.")
    args = parser.parse_args()
    chosen = {int(f) for f in args.floats.split(",") if f.strip()}
    cases = QUICK_CASES if args.quick else CASES
    if chosen:
        cases = [c for c in cases if c.floats in chosen]
        if not cases:
            parser.error(f"--floats: one of {', '.join(str(c.floats) for c in CASES)}")
    with tempfile.TemporaryDirectory(prefix="fedmq-large-") as tmp:
        ctx = Context(quick=args.quick, workdir=Path(tmp))
        table = markdown(row for case in cases for row in measure(ctx, case))
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")


if __name__ == "__main__":
    main()
