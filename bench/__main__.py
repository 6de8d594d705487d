"""``python -m bench [--quick] [--only a,b] [--output table.md]``: run the benchmarks, print the
table.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import bench
from bench import Context, Row
from bench.table import markdown

#: The headline benchmarks in the table's order; other modules with a ``run`` follow by name.
ORDER = ["codec", "ingest", "memory", "accuracy", "scale"]


def discover() -> dict[str, Callable[[Context], Iterable[Row]]]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__))
    ordered = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    found = {}
    for name in ordered:
        module = importlib.import_module(f"bench.{name}")
        runner = getattr(module, "run", None)
        if callable(runner):
            found[name] = runner
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small sizes and short runs: checks the harness, measures little.",
    )
    parser.add_argument(
        "--only", default="", help="Comma-separated benchmark modules to run (default: all)."
    )
    parser.add_argument("--output", help="Also write the markdown table to this file.")
    parser.add_argument(
        "--workdir", help="Keep run directories here (default: a temporary directory)."
    )
    args = parser.parse_args(argv)

    from runtime.memory import tune_allocator

    tune_allocator()  # the same allocator policy as the aggregator and worker processes
    # clean up federations and processes on SIGTERM too
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    benchmarks = discover()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(only) - set(benchmarks))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    with tempfile.TemporaryDirectory(prefix="fedmq-bench-") as tmp:
        ctx = Context(quick=args.quick, workdir=Path(args.workdir or tmp))
        rows: list[Row] = []
        started = time.monotonic()
        for name, runner in benchmarks.items():
            if only and name not in only:
                continue
            ctx.log(f"running {name}")
            rows.extend(runner(ctx))
    table = markdown(rows)
    print(table)
    print(f"\n{'quick' if args.quick else 'full'} run, {time.monotonic() - started:.0f} s")
    if args.output:
        Path(args.output).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
