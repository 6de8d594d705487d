"""Compressed updates: bytes per update, aggregator updates/s and accuracy per mode, vs float32.

One in-process federation per mode, identical in everything else: the digits
MLP, 8 clients on a Dirichlet(0.5) split, FedBuff (K = 4), 4 clients training
at once (so updates are stale), the same seeds and the same arrival order.
Workers build their updates with the real worker code (``build_update``, top-k
with its residual kept per client) and encode them; the aggregator side is
what the service runs per update: decode, expand, validate and apply
(``decode`` + ``Aggregator.handle``), timed alone in CPU time. The baseline is mode
``none`` (float32) in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.factory import build_strategy, compression_of, train_config
from aggregator.settings import AggregatorSettings
from bench import Context, Row
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


@dataclass(frozen=True)
class ModeResult:
    mode: str
    bytes_per_update: float
    updates_per_second: float
    accuracy: float


def trainers(hidden: int) -> tuple[list[Trainer], Trainer]:
    opts: dict[str, str | int | float | bool] = {
        "model": "mlp",
        "hidden": hidden,
        "dataset": "digits",
        "partition": "dirichlet",
    }
    clients = [
        make_trainer(TrainerContext("worker", i, CLIENTS, seed=0, options=opts))
        for i in range(CLIENTS)
    ]
    return list(clients), make_trainer(TrainerContext("aggregator", 0, CLIENTS, 0, options=opts))


def simulate(mode: CompressionMode, updates: int, hidden: int, fraction: float) -> ModeResult:
    settings = AggregatorSettings(
        strategy="fedbuff", buffer_size=4, compression=mode, topk_fraction=fraction
    )
    clients, evaluator = trainers(hidden)
    strategy = build_strategy(settings)
    state = AggregatorState("bench", 0, evaluator.initial_weights(), AppliedWindow(1 << 20))
    core = Aggregator(state, strategy, max_staleness=None, compression=compression_of(settings))
    config = train_config(settings, strategy)
    rng = np.random.default_rng(0)
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


def rows(results: list[ModeResult], fraction: float) -> Iterable[Row]:
    base = results[0]
    load = os.getloadavg()[0]
    for r in results:
        shrink = base.bytes_per_update / r.bytes_per_update
        lost = 100 * (base.accuracy - r.accuracy)
        floor = FLOORS.get(r.mode)
        label = f"{r.mode} ({fraction:.0%})" if r.mode == "topk" else r.mode
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
        yield Row(
            "compression",
            f"{label}: accuracy",
            f"{r.accuracy:.4f}",
            f"{base.accuracy:.4f} (float32)",
            round(lost, 2),
            f"<= {floor[1]} points lost" if floor else "",
            lost <= floor[1] if floor else None,
            "ratio column: points lost",
        )
        yield Row(
            "compression",
            f"{label}: aggregator updates/s",
            f"{r.updates_per_second:,.0f}/s",
            f"{base.updates_per_second:,.0f}/s (float32)",
            round(r.updates_per_second / base.updates_per_second, 2),
            "",
            None,
            "decode + expand + validate + apply",
        )


def run(ctx: Context) -> Iterable[Row]:
    updates, hidden, fraction = (40, 64, 0.01) if ctx.quick else (240, 128, 0.01)
    results = []
    for mode in MODES:
        ctx.log(f"compression: {mode}, {updates} updates, MLP {hidden} hidden")
        results.append(simulate(mode, updates, hidden, fraction))
    return list(rows(results, fraction))
