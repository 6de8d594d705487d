"""The privacy-utility table of docs/privacy.md: test accuracy at epsilon in {1, 3, 8, inf}, delta =
1e-5.

* Record-level DP (DP-SGD in each worker) on digits, W workers, Dirichlet(0.5) split.
  Each worker's noise multiplier is calibrated with dp-accounting so that its
  planned ``--fits`` local trainings spend exactly the target epsilon; the
  epsilon shown is the largest any worker reported.
* User-level DP (central, at the aggregator) on Synthetic (IID variant) with
  many clients: FedBuff, K updates per release, noise calibrated so that a
  client in ``--passes`` releases spends the target; the budget stops training.

Both drive the real aggregator core, privacy layer and built-in trainers in
one process (``bench.privacy_sim``): asynchrony is simulated, not networked.

    python -m bench.privacy_utility            # both tables (a few minutes on 2 cores)
    python -m bench.privacy_utility --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from aggregator.settings import AggregatorSettings
from bench.privacy_sim import Simulation
from privacy.accountant import GaussianEvent, Ledger, calibrate_noise_multiplier
from privacy.dpsgd import DpSgdParams, sampling_rate, steps_for
from privacy.noise import entropy_generator
from privacy.spending import Spending
from tasks.builtin import BuiltinTrainer, DpSgdSetup, federated_split
from tasks.models import get_model
from training.trainer import Options

DELTA = 1e-5
EPSILONS = [1.0, 3.0, 8.0, math.inf]


@dataclass(frozen=True)
class Row:
    table: str
    epsilon_target: float | None
    noise_multiplier: float | None
    epsilon_spent: float | None
    accuracy: float
    versions: int
    applied: int
    stopped_because: str
    seconds: float
    accuracy_std: float = 0.0
    seeds: int = 1


def over_seeds(run: Callable[[int], Row], seeds: int) -> Row:
    """Run with seeds 0..seeds-1: mean accuracy (and its std), the largest epsilon spent, mean
    versions.
    """
    rows = [run(seed) for seed in range(seeds)]
    spent = [r.epsilon_spent for r in rows if r.epsilon_spent is not None]
    acc = np.array([r.accuracy for r in rows])
    return replace(
        rows[0],
        epsilon_spent=max(spent) if spent else None,
        noise_multiplier=max(
            (r.noise_multiplier for r in rows if r.noise_multiplier is not None), default=None
        ),
        accuracy=float(acc.mean()),
        accuracy_std=float(acc.std(ddof=1)) if len(rows) > 1 else 0.0,
        versions=int(round(np.mean([r.versions for r in rows]))),
        applied=int(round(np.mean([r.applied for r in rows]))),
        seconds=round(sum(r.seconds for r in rows), 1),
        seeds=seeds,
    )


def _z(epsilon: float, ledger_for: Any) -> float:
    return 0.0 if math.isinf(epsilon) else calibrate_noise_multiplier(epsilon, DELTA, ledger_for)


def record_level(args: argparse.Namespace, epsilon: float | None, seed: int) -> Row:
    """Digits, DP-SGD in every worker (``epsilon=None``: plain SGD)."""
    opts: Options = {"dataset": "digits", "partition": "dirichlet", "dirichlet_alpha": 0.5}
    split = federated_split(opts, args.workers, seed)
    model = get_model("logreg")
    trainers, zs = [], []
    for i in range(args.workers):
        setup = None
        if epsilon is not None:
            setup = _dpsgd_setup(args, epsilon, len(split.parts[i]), seed * 1000 + i)
            zs.append(setup.params.noise_multiplier)
        trainers.append(BuiltinTrainer(model, split.data(i), seed, i, setup))
    settings = AggregatorSettings(
        strategy="fedbuff",
        buffer_size=args.record_buffer,
        sample_weighting=False,
        batch_size=args.batch,
        learning_rate=args.record_lr,
        max_staleness=None,
        server_lr=1.0,
    )
    sim = Simulation(settings, trainers, trainers[0], trainers[0].initial_weights(), seed=seed)
    started = time.monotonic()
    result = sim.run(concurrency=args.workers, max_versions=10**9, max_fits=args.fits)
    spent = max(result.worker_epsilon.values()) if result.worker_epsilon else None
    z = max(zs) if zs else None
    return _row("record", epsilon, z, spent, result, started)


def _dpsgd_setup(args: argparse.Namespace, epsilon: float, rows: int, seed: int) -> DpSgdSetup:
    """DP-SGD calibrated so ``args.fits`` local epochs on ``rows`` examples spend ``epsilon``."""
    q = sampling_rate(args.batch, rows)
    steps = steps_for(1, q) * args.fits
    z = _z(epsilon, lambda z: Ledger().add(GaussianEvent(z, q), steps))
    return DpSgdSetup(
        DpSgdParams(args.record_clip, z), Spending(delta=DELTA), entropy_generator(seed)
    )


def user_level(args: argparse.Namespace, epsilon: float | None, split: Any, seed: int) -> Row:
    """Synthetic IID with many clients, central DP at the aggregator (``epsilon=None``: no DP)."""
    model = get_model("logreg")
    trainers = [BuiltinTrainer(model, split.data(i), seed, i) for i in range(args.clients)]
    releases = args.passes * args.clients // args.buffer
    base: dict[str, Any] = dict(
        strategy="fedbuff",
        buffer_size=args.buffer,
        sample_weighting=False,
        learning_rate=args.user_lr,
        server_lr=args.server_lr,
        max_staleness=None,
    )
    z = (
        None
        if epsilon is None
        else _z(epsilon, lambda z: Ledger().add(GaussianEvent(z), args.passes))
    )
    if z is not None and epsilon is not None:
        target = None if math.isinf(epsilon) else epsilon
        base.update(
            dp="central", dp_clip=args.user_clip, dp_noise_multiplier=z,
            target_epsilon=target, target_delta=DELTA, dp_seed=seed,
        )  # fmt: skip
    settings = AggregatorSettings(**base)
    sim = Simulation(settings, trainers, trainers[0], trainers[0].initial_weights(), seed=seed)
    started = time.monotonic()
    result = sim.run(concurrency=2 * args.buffer, max_versions=releases)
    spent = result.privacy.epsilon if result.privacy else None
    return _row("user", epsilon, z, spent, result, started)


def _row(
    level: str,
    epsilon: float | None,
    z: float | None,
    spent: float | None,
    result: Any,
    started: float,
) -> Row:
    return Row(
        level, epsilon, z, spent, result.accuracy, result.versions, result.applied,
        result.stopped_because, round(time.monotonic() - started, 1),
    )  # fmt: skip


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.{digits}g}"


def print_table(rows: list[Row]) -> None:
    print(
        f"{'table':<7} {'target eps':>10} {'z':>7} {'spent eps':>10} {'accuracy':>16} "
        f"{'versions':>9} {'applied':>8}  stopped"
    )
    for r in rows:
        target = "no DP" if r.epsilon_target is None else _fmt(r.epsilon_target)
        accuracy = f"{r.accuracy:.4f} +- {r.accuracy_std:.4f}"
        print(
            f"{r.table:<7} {target:>10} {_fmt(r.noise_multiplier):>7} {_fmt(r.epsilon_spent):>10} "
            f"{accuracy:>16} "
            f"{r.versions:>9} {r.applied:>8}  {r.stopped_because} ({r.seconds}s, {r.seeds} seeds)"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.privacy_utility", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="Smaller runs (smoke test).")
    p.add_argument("--only", choices=["record", "user"], help="Run one table only.")
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="Repeat every row with seeds 0..N-1 (data split, noise, arrival order).",
    )
    p.add_argument(
        "--workers", type=int, default=4, help="Record level: workers (digits partitions)."
    )
    p.add_argument("--fits", type=int, default=30, help="Record level: local trainings per worker.")
    p.add_argument(
        "--batch", type=int, default=64, help="Record level: expected DP-SGD batch size."
    )
    p.add_argument("--record-clip", type=float, default=1.0)
    p.add_argument("--record-lr", type=float, default=1.0)
    p.add_argument("--record-buffer", type=int, default=2, help="Record level: FedBuff K.")
    p.add_argument("--clients", type=int, default=2000, help="User level: clients.")
    p.add_argument(
        "--buffer", type=int, default=200, help="User level: FedBuff K (updates per release)."
    )
    p.add_argument(
        "--passes", type=int, default=10, help="User level: releases per client the budget allows."
    )
    p.add_argument("--user-clip", type=float, default=0.5)
    p.add_argument("--user-lr", type=float, default=0.3)
    p.add_argument("--server-lr", type=float, default=3.0)
    p.add_argument("--json", help="Also write the rows here.")
    args = p.parse_args(argv)
    if args.quick:
        args.fits, args.clients, args.buffer, args.seeds = 10, 400, 40, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows: list[Row] = []
    if args.only in (None, "record"):
        rows += [
            over_seeds(functools.partial(record_level, args, eps), args.seeds)
            for eps in [*EPSILONS, None]
        ]
    if args.only in (None, "user"):
        splits = [
            federated_split({"dataset": "synthetic", "synthetic_iid": True}, args.clients, seed)
            for seed in range(args.seeds)
        ]

        def user_run(eps: float | None) -> Callable[[int], Row]:
            return lambda seed: user_level(args, eps, splits[seed], seed)

        rows += [over_seeds(user_run(eps), args.seeds) for eps in [*EPSILONS, None]]
    print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": [r.__dict__ for r in rows]}, fh, indent=2)


if __name__ == "__main__":
    main()
