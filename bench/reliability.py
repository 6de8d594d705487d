"""Reliability figures for docs/reliability.md, each reproducible with one command.

    python -m bench.reliability restart     # SIGKILL the aggregator, restart it: time to its first
    new version
    python -m bench.reliability checkpoint  # cost of one checkpoint (one version) for a 1 MB and a
    40 MB model
    python -m bench.reliability throughput  # updates/s with group commit (default batch) and
    without (--max-batch 1)
    python -m bench.reliability             # all three

``restart`` and ``throughput`` run real processes against ``AMQP_URL`` (the
local broker by default) on a fresh namespace, deleted afterwards.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.shell.checkpoint import save_checkpoint
from broker.connection import AmqpSession
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology, delete_topology
from harness.procs import Federation, wait_for
from schemas.codec import encode
from schemas.messages import ClientUpdate
from training.loading import load_trainer
from training.settings import TaskSettings

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
Figures = dict[str, Any]
#: Emulated device time per fit in the restart benchmark (a digits fit alone takes ~2 ms).
DEVICE_SECONDS = 0.05
STEADY_BACKLOG = 8
BENCHMARKS = ["restart", "checkpoint", "throughput"]


def report(title: str, figures: Figures) -> Figures:
    print(f"\n{title}")
    for key, value in figures.items():
        print(f"  {key:<44} {value}")
    return figures


def summary_ms(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} (n={len(ms)})"


class Namespace:
    """A fresh federation on the broker, deleted on exit, with a run directory."""

    def __init__(self, label: str, workdir: Path) -> None:
        self.name = f"bench-{label}-{uuid.uuid4().hex[:6]}"
        self.settings = BrokerSettings(amqp_url=AMQP_URL, namespace=self.name, connect_attempts=3)
        self.fed = Federation(namespace=self.name, amqp_url=AMQP_URL, run_dir=workdir / self.name)
        self.fed.run_dir.mkdir(parents=True)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fed.close()
        with AmqpSession(self.settings, name="fedmq-bench") as session:
            delete_topology(session, Names(self.name))


# -- restart: SIGKILL -> first new version --------------------------------------------
def after_last_start(
    audit: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    starts = [i for i, e in enumerate(audit) if e["event"] == "start"]
    return (audit[starts[-1]], audit[starts[-1] + 1 :]) if starts else None


def first_new_version(fed: Federation, lives: int) -> tuple[float, float] | None:
    """Times of the ``lives``-th life's start line and of its first version above the one it resumed
    at.
    """
    audit = fed.audit()
    if sum(e["event"] == "start" for e in audit) < lives:
        return None
    found = after_last_start(audit)
    assert found is not None
    start, rest = found
    new = [e for e in rest if e["event"] == "published" and e["version"] > start["version"]]
    return (start["time"], new[0]["time"]) if new else None


def steady(ns: Namespace, since: int) -> bool:
    """50 versions past ``since`` and no backlog: a kill interrupts the normal batch loop."""
    if ns.fed.latest_version() < since + 50:
        return False
    with AmqpSession(ns.settings, name="fedmq-bench") as session:
        return session.queue_counts(Names(ns.name).results_queue)[0] <= STEADY_BACKLOG


def bench_restart(workdir: Path, kills: int, seed: int) -> Figures:
    rng = random.Random(seed)
    to_start, start_to_new, to_new, kill_to_new = [], [], [], []
    with Namespace("restart", workdir) as ns:
        fed = ns.fed
        agg = fed.aggregator("--max-seconds", "3600")
        for i in range(4):
            fed.worker(i, "--delay", str(DEVICE_SECONDS))
        for life in range(2, kills + 2):
            mark = fed.latest_version()
            wait_for(functools.partial(steady, ns, mark), 300, "steady progress")
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment in the batch loop
            killed = time.time()
            agg.send_signal(signal.SIGKILL)
            agg.wait(timeout=30)
            restarted = time.time()
            agg = fed.aggregator("--max-seconds", "3600")
            start, new = wait_for(
                functools.partial(first_new_version, fed, life), 300, "the first new version"
            )
            to_start.append(start - restarted)
            start_to_new.append(new - start)
            to_new.append(new - restarted)
            kill_to_new.append(new - killed)
    return report(
        f"restart after SIGKILL (aggregator + 4 workers with {DEVICE_SECONDS * 1000:.0f} ms fits, "
        f"digits logreg, {kills} kills)",
        {
            "restart -> running (imports, trainer data, checkpoint)": summary_ms(to_start),
            "running -> first new version (attach, republish, batch)": summary_ms(start_to_new),
            "restart -> first new version": summary_ms(to_new),
            "SIGKILL -> first new version": summary_ms(kill_to_new),
        },
    )


# -- checkpoint cost per version ---------------------------------------------------------
def model_of(megabytes: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Two float32 arrays totalling ``megabytes`` MiB."""
    total = int(megabytes * (1 << 20) // 4)
    return {
        "W": rng.standard_normal(total - 1024, dtype=np.float32),
        "b": rng.standard_normal(1024, dtype=np.float32),
    }


def time_checkpoints(
    state_dir: Path,
    state: AggregatorState,
    strategy: tuple[dict[str, Any], dict[str, np.ndarray]],
    repeats: int,
) -> list[float]:
    times = []
    for i in range(repeats):
        state.version, state.commit = i + 1, i + 1
        started = time.perf_counter()
        save_checkpoint(state_dir, state, strategy)
        times.append(time.perf_counter() - started)
    return times


def bench_checkpoint(workdir: Path, sizes: list[float], window: int) -> Figures:
    rng = np.random.default_rng(0)
    figures: Figures = {}
    for megabytes in sizes:
        weights = model_of(megabytes, rng)
        applied = AppliedWindow(window, (uuid.uuid4().hex for _ in range(window)))
        state = AggregatorState("bench", 0, weights, applied)
        for strategy, extra in (
            ("fedasync", {}),
            ("fedbuff", {"buffer/W": weights["W"], "buffer/b": weights["b"]}),
        ):
            state_dir = workdir / f"checkpoint-{megabytes:g}mb-{strategy}"
            times = time_checkpoints(
                state_dir, state, ({}, extra), repeats=30 if megabytes <= 4 else 8
            )
            written = sum(p.stat().st_size for p in state_dir.iterdir()) / (1 << 20)
            rate = written / statistics.median(times)
            figures[f"{megabytes:g} MB model, {strategy} ({written:.1f} MB written)"] = (
                f"{summary_ms(times)}, {rate:.0f} MB/s"
            )
    return report(
        f"checkpoint per version (write, fsync, rename, fsync dir; {window} update ids) in "
        f"{workdir}",
        figures,
    )


# -- throughput with and without group commit ---------------------------------------------
def preload(settings: BrokerSettings, task: TaskSettings, count: int, seed: int) -> None:
    """``count`` valid updates in the results queue, as if from many workers at version 0."""
    shapes = load_trainer(task, role="aggregator", partition=0).initial_weights()
    rng = np.random.default_rng(seed)
    names = Names(settings.namespace)
    with AmqpSession(settings, name="fedmq-bench") as session:
        declare_topology(session, names)
        for i in range(count):
            arrays = {
                k: (v + 0.01 * rng.standard_normal(v.shape)).astype(v.dtype)
                for k, v in shapes.items()
            }
            update = ClientUpdate(
                update_id=uuid.uuid4().hex,
                worker_id=f"w{i % 8}",
                base_version=0,
                num_examples=100,
                update_kind="weights",
                train_seconds=0.01,
                arrays=arrays,
            )
            session.publish(
                names.inbox_exchange,
                UPDATE_KEY,
                encode(update),
                update_properties(update.update_id, "guest", 0),
            )


def drain_rate(workdir: Path, task: TaskSettings, count: int, batch_flags: list[str]) -> Figures:
    """Preload ``count`` updates, start an aggregator, time it from its first application to its
    last.
    """
    with Namespace("throughput", workdir) as ns:
        preload(ns.settings, task, count, seed=1)
        flags = [
            "--max-versions",
            str(count),
            "--max-staleness",
            str(count),
            "--eval-every",
            str(10 * count),
        ]
        agg = ns.fed.aggregator(
            *flags, "--model", task.model, "--hidden", str(task.hidden), *batch_flags
        )
        if agg.wait(timeout=1800) != 0:
            raise RuntimeError(ns.fed.log("aggregator.log")[-2000:])
        applied = [e for e in ns.fed.audit() if e["event"] == "applied"]
    seconds = applied[-1]["time"] - applied[0]["time"]
    return {
        "updates/s": len(applied) / seconds,
        "checkpoints": len({e["commit"] for e in applied}),
        "seconds": seconds,
        "applied": len(applied),
    }


def rejection_rate(workdir: Path, task: TaskSettings, count: int) -> float:
    """Late updates rejected per second: all but the first preloaded update are too stale (max
    staleness 0).
    """
    with Namespace("late", workdir) as ns:
        preload(ns.settings, task, count, seed=2)
        agg = ns.fed.aggregator(
            "--max-staleness",
            "0",
            "--max-seconds",
            "3600",
            "--model",
            task.model,
            "--hidden",
            str(task.hidden),
        )

        def rejected() -> list[dict[str, Any]]:
            lines = [e for e in ns.fed.audit() if e["event"] == "rejected"]
            return lines if len(lines) >= count - 1 else []

        lines = wait_for(rejected, 1800, f"{count - 1} rejections", interval=0.5)
        agg.send_signal(signal.SIGTERM)
        agg.wait(timeout=60)
    return float((len(lines) - 1) / (lines[-1]["time"] - lines[0]["time"]))


def describe_rate(f: Figures) -> str:
    during = f"{f['applied']} updates in {f['seconds']:.1f} s, {f['checkpoints']} checkpoints"
    return f"{f['updates/s']:.0f} updates/s ({during})"


def bench_throughput(workdir: Path, count: int, task: TaskSettings) -> Figures:
    grouped = drain_rate(workdir, task, count, [])
    single = drain_rate(workdir, task, count, ["--max-batch", "1"])
    model = f"{task.model} (hidden {task.hidden})" if task.model == "mlp" else task.model
    return report(
        f"aggregator throughput on a preloaded queue (digits {model}, FedAsync, {count} updates)",
        {
            "group commit (default: batch = prefetch)": describe_rate(grouped),
            "no group commit (--max-batch 1)": describe_rate(single),
            "speed-up from group commit": f"{grouped['updates/s'] / single['updates/s']:.1f}x",
            "late updates rejected (too-stale)": (
                f"{rejection_rate(workdir, task, count):.0f} updates/s"
            ),
        },
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reliability", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("which", nargs="*", help=f"Which figures: {', '.join(BENCHMARKS)} (default: all).")
    add("--kills", type=int, default=5, help="restart: how many SIGKILLs (default 5).")
    add("--sizes", default="1,40", help="checkpoint: model sizes in MiB (default 1,40).")
    add("--window", type=int, default=20_000, help="checkpoint: update ids in the window.")
    add("--updates", type=int, default=2000, help="throughput: preloaded updates (default 2000).")
    add("--model", default="logreg", choices=["logreg", "mlp"], help="throughput: the model.")
    add("--hidden", type=int, default=64, help="throughput: MLP hidden units.")
    add("--workdir", help="Where run and state directories go (default: a new one under ./runs).")
    add("--json", help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.which) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return args


def run_one(which: str, workdir: Path, args: argparse.Namespace) -> Figures:
    if which == "restart":
        return bench_restart(workdir, args.kills, seed=0)
    if which == "checkpoint":
        return bench_checkpoint(workdir, [float(s) for s in args.sizes.split(",")], args.window)
    task = TaskSettings(model=args.model, hidden=args.hidden)
    return bench_throughput(workdir, args.updates, task)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Path("runs").mkdir(exist_ok=True)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-reliability-", dir="runs"))
    results = {
        which: run_one(which, workdir, args) for which in dict.fromkeys(args.which or BENCHMARKS)
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
