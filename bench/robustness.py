"""Robustness table on the simulator: mean final accuracy per attack, attacker speed and defence.

    python -m bench.robustness [--seeds 3] [--attacks flip,alie] [--strategies fedbuff]
        [--out runs/bench-robustness]

8 clients on Dirichlet(0.5) digits (logistic regression), 2 of them Byzantine
(``harness.adversaries``), either as fast as the honest ones or 3x faster.
Every update goes through the real aggregator core (validation, the norm
bound, the strategy and its robust rule); only time is simulated, which is
faithful here because the attacks do not depend on the broker. FedBuff
(K = 8) runs 40 versions, FedAsync 300. Each cell is the mean over
``--seeds`` seeds (data split, initial model and timing all change with the
seed). The row "attackers absent" is the clean run with clients 0 and 1
never delivering: the ceiling of any defence that drops the attackers'
updates (their partitions are lost with them). Writes ``robustness.json`` and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.adversaries import ATTACKS, Adversary
from simulator.engine import simulate
from simulator.settings import SimulationSettings
from tasks.builtin import make_trainer
from training.trainer import Trainer, TrainerContext, TrainerFactory

WORKERS, ATTACKERS = 8, 2
STRATEGIES: dict[str, dict[str, Any]] = {
    "fedbuff": {"strategy": "fedbuff", "buffer_size": 8, "max_versions": 40},
    "fedasync": {"strategy": "fedasync", "max_versions": 300},
}
DEFENCES: dict[str, dict[str, dict[str, Any]]] = {
    "fedbuff": {
        "none": {},
        "norm-bound": {"norm_bound": 3.0},
        "median": {"aggregation": "median"},
        "trimmed-mean": {"aggregation": "trimmed-mean", "trim_fraction": 0.25},
        "multi-krum": {"aggregation": "multi-krum"},
        "centered-clip": {"aggregation": "centered-clip"},
        "trajectory": {"aggregation": "trajectory"},
        "reputation": {"aggregation": "reputation"},
    },
    "fedasync": {
        "none": {},
        "norm-bound": {"norm_bound": 3.0},
        "norm-bound+fair-share": {"norm_bound": 3.0, "fair_share": True},
    },
}
#: Slowdown factors: attackers are clients 0 and 1.
SPEEDS = {"1x": "1", "3x": "1,1,3,3,3,3,3,3"}
#: The exclusion ceiling: clients 0 and 1 never deliver (a slowdown no run outlasts), so the
#: model learns from the six honest partitions only, which is the best any defence that drops
#: the attackers' updates can reach: their quarter of the (non-IID) data is lost with them.
ABSENT = "1e9,1e9,1,1,1,1,1,1"


def factory(attack: str | None) -> TrainerFactory:
    """Honest builtin trainers, except clients 0..ATTACKERS-1, which run ``attack``."""

    def make(ctx: TrainerContext) -> Trainer:
        honest = make_trainer(ctx)
        if attack is None or ctx.role != "simulator" or ctx.partition >= ATTACKERS:
            return honest
        peers = (
            [make_trainer(dataclasses.replace(ctx, partition=p)) for p in range(ATTACKERS, WORKERS)]
            if attack in ("alie", "ipm")
            else []
        )
        return Adversary(honest, attack, peers, ATTACKERS)

    return make


def run_cell(strategy: str, defence: str, attack: str | None, speed: str, seed: int) -> float:
    """Final test accuracy of one simulated run."""
    settings = SimulationSettings(
        **STRATEGIES[strategy],
        **DEFENCES[strategy][defence],
        partition="dirichlet",
        dirichlet_alpha=0.5,
        num_partitions=WORKERS,
        data_seed=seed,
        seed=seed,
        sim_seed=seed,
        duration="uniform:0.8,1.2",
        speeds=ABSENT if speed == "absent" else SPEEDS[speed],
        max_staleness=None,
        eval_every=1000,
    )
    result = simulate(settings, factory(attack))
    return float(result.accuracy if result.accuracy is not None else float("nan"))


def table(cells: dict[str, dict[str, Any]], strategy: str) -> str:
    """Markdown: one row per (attack, speed), one column per defence; mean over seeds."""
    defences = list(DEFENCES[strategy])
    lines = [
        f"| {strategy}: attack | attackers' speed | " + " | ".join(defences) + " |",
        "|" + "---|" * (len(defences) + 2),
    ]
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells.values():
        if c["strategy"] == strategy:
            rows.setdefault((c["attack"], c["speed"]), {})[c["defence"]] = f"{c['mean']:.3f}"
    for (attack, speed), by_defence in rows.items():
        values = [by_defence.get(d, "") for d in defences]
        lines.append(f"| {attack} | {speed} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-robustness")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--defences", default="", help="comma-separated subset (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells: dict[str, dict[str, Any]] = {}
    for strategy in args.strategies.split(","):
        defences = [
            d for d in DEFENCES[strategy] if not args.defences or d in args.defences.split(",")
        ]
        matrix = [(None, "1x"), (None, "absent")]
        matrix += [(a, s) for a in args.attacks.split(",") for s in SPEEDS]
        for attack, speed in matrix:
            for defence in defences:
                started = time.monotonic()
                accuracies = [
                    run_cell(strategy, defence, attack, speed, s) for s in range(args.seeds)
                ]
                label = f"{strategy}/{defence}/{attack or 'clean'}/{speed}"
                cells[label] = {
                    "strategy": strategy,
                    "defence": defence,
                    "attack": attack or ("clean" if speed != "absent" else "attackers absent"),
                    "speed": speed if attack else "-",
                    "accuracies": accuracies,
                    "mean": float(np.mean(accuracies)),
                    "seconds": round(time.monotonic() - started, 1),
                }
                print(f"{label:<45} {cells[label]['mean']:.3f}  {accuracies}", flush=True)
                (out / "robustness.json").write_text(json.dumps(cells, indent=1))
    for strategy in args.strategies.split(","):
        print()
        print(table(cells, strategy))


if __name__ == "__main__":
    main()
