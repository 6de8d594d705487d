"""``python -m bench.flower [--seconds 400] [--flower-seconds 1200] [--learning-rate 0.2]``:
fedmq's FedAsync, FedBuff and synchronous FedAvg, then Flower's deployment runtime, on the same
task in one run; prints the time to 90 % of the centralised ceiling and the accuracy at fixed
times, as ratios.

Flower runs from its own environment (``--flower-venv``, built by ``make bench-flower-env``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from bench import Context
from bench.flower.curves import Curve, best
from bench.flower.ours import STRATEGIES, fedmq_curve
from bench.flower.peer import flower_curve
from bench.flower.report import PEER, accuracy_table, time_table
from bench.flower.task import CEILING, LEARNING_RATE, TARGET
from torchtrain.mnist1d import DEFAULT_SAMPLES, load

FLOOR = 10.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flower", description=__doc__)
    parser.add_argument("--seconds", type=float, default=400.0, help="Length of a fedmq run.")
    parser.add_argument(
        "--flower-seconds", type=float, default=1200.0, help="Length of the Flower run."
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help="Local SGD learning rate, the same for fedmq's workers and Flower's clients.",
    )
    parser.add_argument("--checkpoints", default="60,120,240,400", help="Times to read accuracy.")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--flower-venv", default=".venv-flower")
    parser.add_argument("--workdir", help="Keep run directories here (default: a temporary one).")
    parser.add_argument("--output", help="Also write the curves and tables (JSON) here.")
    parser.add_argument("--tables-from", help="Print the tables of an earlier --output file.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.tables_from:  # the tables of an earlier run's --output, without running anything
        print("\n\n".join(tables(*saved(args), args.checkpoints)))
        return 0
    venv = Path(args.flower_venv)
    if not (venv / "bin" / "flower-superlink").exists():
        print(f"no Flower in {venv}: run `make bench-flower-env` first", file=sys.stderr)
        return 2
    curves, ran = measure(args, venv)
    shown = tables(curves, ran, args.checkpoints)
    print("\n\n".join(shown))
    if args.output:
        settings = {"learning_rate": args.learning_rate, "strategies": args.strategies}
        out = {"curves": curves, "ran": ran, "settings": settings, "tables": shown}
        Path(args.output).write_text(json.dumps(out, indent=1))
    return 0


def measure(args: argparse.Namespace, venv: Path) -> tuple[dict[str, Curve], dict[str, float]]:
    """The fedmq runs, then the Flower run: each runtime's curve and how long it ran."""
    load(DEFAULT_SAMPLES, 0)  # generate the data once, before any client process starts
    curves: dict[str, Curve] = {}
    ran: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fedmq-flower-") as tmp:
        ctx = Context(quick=False, workdir=Path(args.workdir or tmp))
        for name in args.strategies.split(","):
            ctx.log(f"fedmq {name}, {args.seconds:.0f} s")
            curves[name] = fedmq_curve(ctx, name, args.seconds, args.learning_rate)
            ran[name] = args.seconds
            ctx.log(f"fedmq {name} curve: {json.dumps(curves[name])}")
        ctx.log(f"Flower, {args.flower_seconds:.0f} s")
        started = time.monotonic()
        curves[PEER] = flower_curve(
            venv, ctx.scratch("flower"), args.flower_seconds, args.learning_rate
        )
        ran[PEER] = args.flower_seconds
        ctx.log(f"Flower curve: {json.dumps(curves[PEER])}")
        ctx.log(f"Flower took {time.monotonic() - started:.0f} s of wall clock in all")
    return curves, ran


def saved(args: argparse.Namespace) -> tuple[dict[str, Curve], dict[str, float]]:
    """An earlier run's curves, and its lengths (from the file, else from the flags)."""
    out = json.loads(Path(args.tables_from).read_text())
    curves: dict[str, Curve] = {k: [(t, a) for t, a in v] for k, v in out["curves"].items()}
    ran = {k: args.flower_seconds if k == PEER else args.seconds for k in curves}
    return curves, {**ran, **out.get("ran", {})}


def tables(curves: Mapping[str, Curve], ran: Mapping[str, float], checkpoints: str) -> list[str]:
    peer_best = best(curves[PEER])
    return [
        f"Target: {TARGET:.4f} (90 % of the measured ceiling {CEILING})",
        time_table(curves, ran, TARGET, FLOOR),
        accuracy_table(curves, [float(t) for t in checkpoints.split(",")]),
        f"Time to the best accuracy Flower reached ({peer_best:.4f}):",
        time_table(curves, ran, peer_best, None),
    ]


if __name__ == "__main__":
    sys.exit(main())
