"""``python -m bench.flower [--seconds 400] [--flower-seconds 1200]``: fedmq's FedAsync, FedBuff
and synchronous FedAvg, then Flower's deployment runtime, on the same task in one run; prints
the time to 90 % of the centralised ceiling and the accuracy at fixed times, as ratios.

Flower runs from its own environment (``--flower-venv``, built by ``make bench-flower-env``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import Context
from bench.flower.curves import Curve
from bench.flower.ours import STRATEGIES, fedmq_curve
from bench.flower.peer import flower_curve
from bench.flower.report import PEER, accuracy_table, time_table
from bench.flower.task import CEILING, TARGET
from torchtrain.mnist1d import DEFAULT_SAMPLES, load

FLOOR = 10.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flower", description=__doc__)
    parser.add_argument("--seconds", type=float, default=400.0, help="Length of a fedmq run.")
    parser.add_argument(
        "--flower-seconds", type=float, default=1200.0, help="Length of the Flower run."
    )
    parser.add_argument("--checkpoints", default="60,120,240,400", help="Times to read accuracy.")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--flower-venv", default=".venv-flower")
    parser.add_argument("--workdir", help="Keep run directories here (default: a temporary one).")
    parser.add_argument("--output", help="Also write the curves and tables (JSON) here.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    venv = Path(args.flower_venv)
    if not (venv / "bin" / "flower-superlink").exists():
        print(f"no Flower in {venv}: run `make bench-flower-env` first", file=sys.stderr)
        return 2
    load(DEFAULT_SAMPLES, 0)  # generate the data once, before any client process starts
    with tempfile.TemporaryDirectory(prefix="fedmq-flower-") as tmp:
        ctx = Context(quick=False, workdir=Path(args.workdir or tmp))
        curves: dict[str, Curve] = {}
        ran: dict[str, float] = {}
        for name in args.strategies.split(","):
            ctx.log(f"fedmq {name}, {args.seconds:.0f} s")
            curves[name], ran[name] = fedmq_curve(ctx, name, args.seconds), args.seconds
            ctx.log(f"fedmq {name} curve: {json.dumps(curves[name])}")
        ctx.log(f"Flower, {args.flower_seconds:.0f} s")
        started = time.monotonic()
        curves[PEER] = flower_curve(venv, ctx.scratch("flower"), args.flower_seconds)
        ran[PEER] = args.flower_seconds
        ctx.log(f"Flower curve: {json.dumps(curves[PEER])}")
        ctx.log(f"Flower took {time.monotonic() - started:.0f} s of wall clock in all")
    checkpoints = [float(t) for t in args.checkpoints.split(",")]
    tables = [
        f"Target: {TARGET:.4f} (90 % of the measured ceiling {CEILING})",
        time_table(curves, ran, TARGET, FLOOR),
        accuracy_table(curves, checkpoints),
    ]
    print("\n\n".join(tables))
    if args.output:
        Path(args.output).write_text(json.dumps({"curves": curves, "tables": tables}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
