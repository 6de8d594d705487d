"""Robust-aggregation table with real processes: final accuracy per attack, attackers, defence.

    python -m bench.robustness_processes [--out runs/bench-robustness-processes]
        [--attacks scale,flip] [--attackers 1,2]

Needs the broker at ``AMQP_URL`` (default guest on localhost). Every cell is
one real run: an aggregator and 8 worker processes, IID digits, logistic
regression; attackers are workers 0..k-1 running ``harness.attacks``. FedAsync
runs 300 versions and is defended by the norm bound (3 x running median);
FedBuff (K = 8) runs 40 versions and is defended by the coordinate-wise
median or the 0.3-trimmed mean. Writes ``robustness.json`` and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from harness.attacks import ATTACKS
from harness.robust_runs import Scenario, run_scenario

DEFENCES = {"fedasync": ["none", "norm-bound"], "fedbuff": ["none", "median", "trimmed-mean"]}


def scenarios(attacks: list[str], attackers: list[int]) -> list[Scenario]:
    out = []
    for strategy, defences in DEFENCES.items():
        out += [Scenario(strategy, "none")]
        out += [Scenario(strategy, d, a, k) for a in attacks for k in attackers for d in defences]
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per (strategy, attack, attackers), one column per defence."""
    lines = [
        "| strategy | attack | attackers | "
        + " | ".join(["no defence", "norm bound", "median", "trimmed mean"])
        + " |"
    ]
    lines.append("|" + "---|" * 7)
    rows: dict[tuple[str, str, int], dict[str, str]] = {}
    for r in results.values():
        key = (r["strategy"], r["attack"] or "clean", r["attackers"])
        rows.setdefault(key, {})[r["defence"]] = (
            f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "n/a"
        )
    for (strategy, attack, k), cells in rows.items():
        values = [cells.get(d, "") for d in ("none", "norm-bound", "median", "trimmed-mean")]
        lines.append(f"| {strategy} | {attack} | {k} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-robustness-processes")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--attackers", default="1,2")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios(args.attacks.split(","), [int(k) for k in args.attackers.split(",")]):
        started = time.monotonic()
        summary = run_scenario(amqp_url, out, scenario)
        results[scenario.label] = {
            "strategy": scenario.strategy,
            "defence": scenario.defence,
            "attack": scenario.attack,
            "attackers": scenario.attackers,
            "accuracy": summary["accuracy"],
            "version": summary["version"],
            "applied": summary["applied"],
            "rejected": summary["rejected"],
            "seconds": round(time.monotonic() - started, 1),
        }
        print(
            f"{scenario.label:<40} accuracy {summary['accuracy']:.3f}  rejected "
            f"{summary['rejected']}",
            flush=True,
        )
        (out / "robustness.json").write_text(json.dumps(results, indent=1))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
