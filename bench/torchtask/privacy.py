"""Privacy and utility of the PyTorch task: Opacus DP-SGD in every worker, at several budgets.

Eight workers on a Dirichlet(0.5) split of MNIST-1D, each with its own
``TorchTrainer`` and Opacus accountant, against the real aggregator core
(FedBuff) in one process (``bench.privacy_sim``: exponential fit times, stale
updates, no broker). Each worker makes ``fits`` fits; its noise multiplier is
calibrated with Opacus so that exactly those steps spend the target epsilon,
and its own budget check refuses anything beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from opacus.accountants.utils import get_noise_multiplier

from aggregator.settings import AggregatorSettings
from bench.privacy_sim import Simulation
from bench.torchtask.ceiling import task_context
from torchtrain.dpsgd import DpSgdConfig
from torchtrain.mnist1d import build_trainer, load, partition_indices
from torchtrain.trainer import TorchTrainer

DELTA = 1e-5
WORKERS = 8


@dataclass(frozen=True)
class DpRun:
    """One federation's settings: budget (None: no DP; inf: clipping only), schedule, optimiser,
    data size and the CNN's width."""

    epsilon: float | None
    fits: int = 20
    epochs: int = 1
    batch_size: int = 128
    clip: float = 1.0
    learning_rate: float = 0.5
    buffer_size: int = 4
    samples: int = 20_000
    channels: int = 32
    seed: int = 0


@dataclass(frozen=True)
class DpResult:
    run: DpRun
    accuracy: float
    noise_multipliers: list[float]
    epsilon_spent: float
    versions: int


def noise_for(run: DpRun, n: int) -> float:
    """z with which ``run.fits`` fits over ``n`` examples spend exactly ``run.epsilon``."""
    if run.epsilon is None or math.isinf(run.epsilon):
        return 0.0
    # Opacus samples at q = 1 / (batches per epoch) and takes that many steps per epoch.
    batches = math.ceil(n / run.batch_size)
    q, steps = 1.0 / batches, run.fits * run.epochs * batches
    return float(
        get_noise_multiplier(
            target_epsilon=run.epsilon, target_delta=DELTA, sample_rate=q, steps=steps
        )
    )


def workers(run: DpRun) -> tuple[list[TorchTrainer], list[float]]:
    data = load(run.samples, 0)
    trainers, zs = [], []
    for i in range(WORKERS):
        ctx = replace(task_context(run.samples, num_partitions=WORKERS), role="worker", partition=i)
        z = noise_for(run, len(partition_indices(data.y_train, ctx)))
        dp = None
        if run.epsilon is not None:
            dp = DpSgdConfig(z, run.clip, DELTA, run.epsilon, seed=run.seed * 1000 + i)
        trainers.append(
            build_trainer(ctx, batch_size=run.batch_size, dpsgd=dp, channels=run.channels)
        )
        zs.append(z)
    return trainers, zs


def federate(run: DpRun) -> DpResult:
    trainers, zs = workers(run)
    ctx = replace(task_context(run.samples), role="aggregator")
    evaluator = build_trainer(ctx, channels=run.channels)
    settings = AggregatorSettings(
        strategy="fedbuff", buffer_size=run.buffer_size, sample_weighting=False,
        learning_rate=run.learning_rate, local_epochs=run.epochs, batch_size=run.batch_size,
        num_partitions=WORKERS,
    )  # fmt: skip
    sim = Simulation(settings, trainers, evaluator, evaluator.initial_weights(), seed=run.seed)
    result = sim.run(concurrency=WORKERS, max_versions=10**6, max_fits=run.fits)
    spent = max(result.worker_epsilon.values(), default=0.0)
    return DpResult(run, result.accuracy, zs, spent, result.versions)
