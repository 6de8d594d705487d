"""``python -m bench.profile [--floats N] [--updates N]``: cProfile the aggregator draining
prefilled updates.

The profile behind docs/performance.md: the same run as ``bench.ingest``
(FedAsync, default prefetch and checkpointing) under cProfile, then the
functions that took the most time. Statistics are kept with ``--keep``.
"""

from __future__ import annotations

import argparse
import pstats
import tempfile
from pathlib import Path

from bench import Context
from bench.federation import BenchFederation


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument(
        "--floats",
        type=int,
        default=10_000_000,
        help="Model size in float32 elements (default 40 MB).",
    )
    parser.add_argument("--updates", type=int, default=16)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--keep", help="Write the cProfile statistics to this file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedmq-profile-") as tmp:
        stats = Path(args.keep or Path(tmp) / "aggregator.prof").resolve()
        with BenchFederation(Context(quick=False, workdir=Path(tmp)), "profile") as fed:
            fed.prefill(args.floats, args.updates)
            proc = fed.aggregator(
                "--strategy",
                "fedasync",
                "--num-partitions",
                "1",
                "--max-versions",
                str(args.updates),
                "--max-staleness",
                str(10**9),
                "--eval-every",
                str(10**9),
                floats=args.floats,
                profile=stats,
            )
            usage = proc.wait(timeout=900)
        print(
            f"aggregator: exit {usage.returncode}, {usage.wall:.1f} s wall, {usage.cpu:.2f} s "
            f"CPU, peak RSS {usage.peak_rss / 1e6:.0f} MB"
        )
        report = pstats.Stats(str(stats))
        report.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
