"""Compressed updates: bytes per update, aggregator updates/s and accuracy per mode, vs float32.

One in-process federation per mode and task (the digits MLP; with the torch extra the MNIST-1D
and MNIST CNNs), identical in everything else: 8 clients on a Dirichlet(0.5) split, FedBuff
(K = 4), 4 clients training at once (so updates are stale), the same seeds and the same
arrival order, over ``SEEDS`` (each seed draws the data where the task generates it, the split,
the initial model, the data order and the rounding; each cell is the mean over seeds, the
per-seed accuracies in its note). Workers build their updates with the real worker code
(``build_update``, top-k with its residual kept per client) and encode them; the aggregator side is
what the service runs per update: decode, expand, validate and apply
(``decode`` + ``Aggregator.handle``), timed alone in CPU time. The baseline is mode
``none`` (float32) in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.factory import build_strategy, compression_of, train_config
from aggregator.settings import AggregatorSettings
from bench import Context, Row
from bench.table import markdown
from schemas.codec import decode, encode
from schemas.messages import ClientUpdate, CompressionMode, ModelVersion
from tasks.builtin import make_trainer
from training.trainer import Trainer, TrainerContext
from worker.update import build_update

CLIENTS = 8
CONCURRENT = 4
MODES: tuple[CompressionMode, ...] = ("none", "float16", "int8", "topk")
#: mode -> (fewest times fewer bytes than float32, most accuracy points lost)
FLOORS = {"int8": (3.5, 0.5), "topk": (20.0, 2.0)}
#: Accuracy lost is judged only against a baseline this good (far from convergence it is noise).
JUDGED_FROM = 0.8
#: One seed's accuracy is a few test images; the floors are judged on the mean over these.
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ModeResult:
    mode: str
    bytes_per_update: float
    updates_per_second: float
    accuracy: float
    per_seed: tuple[float, ...] = ()


def mean_over_seeds(results: list[ModeResult]) -> ModeResult:
    """One mode's runs over several seeds as one result: every figure the mean."""
    return ModeResult(
        results[0].mode,
        float(np.mean([r.bytes_per_update for r in results])),
        float(np.mean([r.updates_per_second for r in results])),
        float(np.mean([r.accuracy for r in results])),
        tuple(r.accuracy for r in results),
    )


def digits_mlp(hidden: int) -> Callable[[TrainerContext], Trainer]:
    opts: dict[str, str | int | float | bool] = {
        "model": "mlp",
        "hidden": hidden,
        "dataset": "digits",
        "partition": "dirichlet",
    }

    def make(ctx: TrainerContext) -> Trainer:
        return make_trainer(replace(ctx, options=opts))

    return make


def mnist1d_cnn(samples: int) -> Callable[[TrainerContext], Trainer]:
    from torchtrain import mnist1d  # the torch extra: only this task needs it

    def make(ctx: TrainerContext) -> Trainer:
        return mnist1d.make_trainer(replace(ctx, options={"samples": samples}))

    return make


def mnist_cnn() -> Callable[[TrainerContext], Trainer]:
    from torchtrain import mnist  # the torch extra

    def make(ctx: TrainerContext) -> Trainer:
        return mnist.make_trainer(replace(ctx, options={"dataset": "mnist"}))

    return make


def trainers(
    factory: Callable[[TrainerContext], Trainer], seed: int
) -> tuple[list[Trainer], Trainer]:
    clients = [
        factory(TrainerContext("worker", i, CLIENTS, seed=seed, model_seed=seed))
        for i in range(CLIENTS)
    ]
    return clients, factory(TrainerContext("aggregator", 0, CLIENTS, seed=seed, model_seed=seed))


@dataclass(frozen=True)
class Task:
    """A trainer and how long and at what local learning rate its federation trains."""

    name: str
    factory: Callable[[TrainerContext], Trainer]
    updates: int
    learning_rate: float = AggregatorSettings.model_fields["learning_rate"].default


def simulate(mode: CompressionMode, task: Task, fraction: float, seed: int = 0) -> ModeResult:
    settings = AggregatorSettings(
        strategy="fedbuff",
        buffer_size=4,
        compression=mode,
        topk_fraction=fraction,
        learning_rate=task.learning_rate,
    )
    updates = task.updates
    clients, evaluator = trainers(task.factory, seed)
    strategy = build_strategy(settings)
    state = AggregatorState("bench", 0, evaluator.initial_weights(), AppliedWindow(1 << 20))
    core = Aggregator(state, strategy, max_staleness=None, compression=compression_of(settings))
    config = train_config(settings, strategy)
    rng = np.random.default_rng(seed)
    residuals: list[dict[str, np.ndarray]] = [{} for _ in clients]
    flights = [(c, _model(core, config)) for c in range(CONCURRENT)]
    sizes, busy = [], 0.0
    for n in range(updates):
        client, model = flights.pop(0)
        fit = clients[client].fit(dict(model.arrays), model.config)
        update = build_update(f"c{client}", model, fit, 0.0, rng=rng, residual=residuals[client])
        body = encode(update)
        sizes.append(len(body))
        started = time.thread_time()  # CPU time: the machine is shared, wall time is noise
        core.handle(decode(body, ClientUpdate))
        busy += time.thread_time() - started
        flights.append(((CONCURRENT + n) % CLIENTS, _model(core, config)))
    score = evaluator.evaluate(dict(state.weights), config)
    return ModeResult(mode, float(np.mean(sizes)), updates / busy, float(score.metrics["accuracy"]))


def _model(core: Aggregator, config: object) -> ModelVersion:
    state = core.state
    return ModelVersion.model_validate(
        {
            "run_id": "bench",
            "version": state.version,
            "created_at": 0.0,
            "config": config,
            "arrays": {k: v.copy() for k, v in state.weights.items()},
        }
    )


def rows(task: str, results: list[ModeResult], fraction: float) -> Iterable[Row]:
    base = results[0]
    load = os.getloadavg()[0]
    for r in results:
        shrink = base.bytes_per_update / r.bytes_per_update
        lost = 100 * (base.accuracy - r.accuracy)
        floor = FLOORS.get(r.mode)
        label = f"{task}, {r.mode} ({fraction:.0%})" if r.mode == "topk" else f"{task}, {r.mode}"
        yield Row(
            "compression",
            f"{label}: bytes/update",
            f"{r.bytes_per_update:,.0f} B",
            f"{base.bytes_per_update:,.0f} B (float32)",
            round(shrink, 2),
            f">= {floor[0]}x fewer" if floor else "",
            shrink >= floor[0] if floor else None,
            f"load {load:.1f}",
        )
        judged = floor is not None and base.accuracy >= JUDGED_FROM
        not_judged = "" if judged or not floor else f"not judged: float32 below {JUDGED_FROM}"
        yield Row(
            "compression",
            f"{label}: accuracy",
            f"{r.accuracy:.4f} ({lost:+.2f} points lost)",
            f"{base.accuracy:.4f} (float32)",
            None,
            f"<= {floor[1]} points lost" if floor and judged else "",
            lost <= floor[1] if floor and judged else None,
            "; ".join(filter(None, [seeds_note(r), not_judged])),
        )
        yield Row(
            "compression",
            f"{label}: aggregator updates/s",
            f"{r.updates_per_second:,.0f}/s",
            f"{base.updates_per_second:,.0f}/s (float32)",
            round(r.updates_per_second / base.updates_per_second, 2),
            "",
            None,
            "CPU time of decode + expand + validate + apply",
        )


def seeds_note(result: ModeResult) -> str:
    if len(result.per_seed) < 2:
        return ""
    return f"mean of {len(result.per_seed)} seeds: " + ", ".join(
        f"{a:.4f}" for a in result.per_seed
    )


def tasks(quick: bool) -> list[Task]:
    """The tasks to compare on; the CNNs only with the torch extra installed. The CNNs train at
    learning rate 0.2 (docs/torch.md) for as many updates as their float32 run needs to get near
    its ceiling, so that the accuracy a mode loses is not the noise of an unconverged model (the
    MNIST-1D CNN's float32 run was still rising at 600 updates: 0.9425 there, 0.9575 at 1,200,
    mean of 3 seeds)."""
    found = [Task("digits MLP", digits_mlp(64 if quick else 128), 40 if quick else 240)]
    try:
        found.append(Task("MNIST-1D CNN", mnist1d_cnn(4000), 16 if quick else 1200, 0.2))
        found.append(Task("MNIST CNN", mnist_cnn(), 16 if quick else 300, 0.2))
    except ImportError:
        pass  # reported as missing by run()
    return found


def compare(ctx: Context, task: Task, seeds: tuple[int, ...], fraction: float) -> list[Row]:
    """Every mode on one task, each the mean over ``seeds``."""
    results = []
    for mode in MODES:
        runs = []
        for seed in seeds:
            ctx.log(f"compression: {task.name}, {mode}, seed {seed}, {task.updates} updates")
            runs.append(simulate(mode, task, fraction, seed))
        results.append(mean_over_seeds(runs))
    return list(rows(task.name, results, fraction))


def run(ctx: Context) -> Iterable[Row]:
    fraction, out = 0.01, list[Row]()
    seeds = SEEDS[:1] if ctx.quick else SEEDS
    for task in tasks(ctx.quick):
        out += compare(ctx, task, seeds, fraction)
    if len(out) < 3 * 3 * len(MODES):
        out.append(Row("compression", "CNN tasks", "not run: the torch extra is missing"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compression")
    parser.add_argument("--task", action="append", help="Only this task (by name); repeatable.")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="Comma-separated.")
    parser.add_argument("--workdir", default="bench-out")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    ctx = Context(quick=False, workdir=Path(args.workdir))
    chosen = [t for t in tasks(False) if not args.task or t.name in args.task]
    if not chosen:
        parser.error(f"no such task; choose from {[t.name for t in tasks(False)]}")
    print(markdown([row for t in chosen for row in compare(ctx, t, seeds, 0.01)]))


if __name__ == "__main__":
    main()
