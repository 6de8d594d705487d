"""``python -m bench.chunked_memory [--floats N] [--updates N] [--whole]``: the aggregator's peak
RSS while it ingests large updates.

The chunked row of docs/performance.md: ``--updates`` updates of a
``--floats`` float32 model (default 4 of 100 MB) are published to the results
queue as chunk sets of the default ``--chunk-bytes`` (15 MiB, what workers
send), then the aggregator of ``bench.ingest`` (FedAsync, every update a
version, which it publishes in chunks too) drains them. Its peak RSS is
printed beside the target of 2 x model + 150 MB. With ``--whole`` every update
is one message instead (the broker's limit raised to 256 MiB).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench import Context
from bench.federation import BenchFederation
from bench.ingest import aggregator_rate, rss_limit
from bench.procs import mb


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chunked_memory")
    parser.add_argument("--floats", type=int, default=25_000_000, help="default 100 MB")
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--whole", action="store_true", help="send each update as one message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedmq-chunked-") as tmp:
        with BenchFederation(Context(quick=False, workdir=Path(tmp)), "chunked") as fed:
            rate, usage = aggregator_rate(fed, args.floats, args.updates, chunks=not args.whole)
    limit = rss_limit(args.floats * 4)
    how = "whole" if args.whole else "chunked"
    print(
        f"{how} ingest, {mb(args.floats * 4)} model, {args.updates} updates: aggregator peak RSS "
        f"{mb(usage.peak_rss)} (2 x model + 150 MB = {mb(limit)}), {rate:.2f} upd/s, "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
