"""``python -m bench.fault_soak [--rounds 3] [--seeds 7,8] [--modes fedbuff,dp]``: the long soak.

Each mode of ``tests/e2e/test_fault_modes.py`` (which runs one round of
faults per mode in CI), with ``--rounds`` rounds of the four middle faults
(a random SIGKILL, a broker VM SIGKILL, a worker SIGKILL mid-fit, a SIGSTOP
past the heartbeat) after the failpoint crash, for each seed, on one private
RabbitMQ node. Prints one line per run and a table: faults survived, updates
confirmed, lost, applied twice, seconds. Exits 1 if any run found a problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness.mode_faults import DP_BUDGET, MODES, ModeRun, describe, make_plan
from harness.mode_judge import verdict
from harness.procs import Federation
from harness.rabbit_node import RabbitNode
from harness.witness import Witness


def soak_one(node: RabbitNode, base: Path, mode: str, seed: int, rounds: int) -> list[str]:
    """One mode, one seed: the run, judged; the table row."""
    name = f"soak-{mode}-{seed}"
    fed = Federation(namespace=name, amqp_url=node.amqp_url, run_dir=base / name)
    fed.run_dir.mkdir()
    run = ModeRun(fed, node, MODES[mode], ends_by_itself=mode == "dp")
    witness = Witness(node.amqp_url, fed.namespace).start()
    started = time.monotonic()
    try:
        run.run(make_plan(seed, list(MODES).index(mode), rounds=rounds))
    finally:
        witnessed = witness.close()
        fed.close()
    judged = verdict(fed, witnessed, dp_budget=DP_BUDGET if mode == "dp" else None)
    print(f"{mode} seed {seed}: {describe(run, judged)}", flush=True)
    for problem in [*judged.audit.problems, *judged.independent, *judged.privacy]:
        print(f"  PROBLEM {problem}", flush=True)
    return [
        mode,
        str(seed),
        str(len(run.survived)),
        str(judged.audit.confirmed),
        str(judged.lost),
        str(judged.applied_twice),
        "ok" if judged.ok else "FAILED",
        f"{time.monotonic() - started:.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fault_soak", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the middle faults.")
    parser.add_argument("--seeds", default="7", help="Comma-separated plan seeds.")
    parser.add_argument("--modes", default=",".join(MODES), help="Comma-separated modes.")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        RabbitNode(base=Path(tmp) / "rabbit").running() as node,
    ):
        for seed in (int(s) for s in args.seeds.split(",")):
            for mode in modes:
                rows.append(soak_one(node, Path(tmp), mode, seed, args.rounds))
    header = ["mode", "seed", "faults", "confirmed", "lost", "applied twice", "verdict", "s"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[6] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
