"""A worker's own local-DP terms: a noise floor the aggregator cannot lower, and its own budget."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from privacy.accountant import GaussianEvent, Ledger, epsilon
from privacy.local_guard import LocalGuard, local_guard
from privacy.spending import Spending
from schemas.messages import ClientPrivacy, ModelVersion, TrainConfig
from training.trainer import EvalResult, FitResult
from worker.service import WorkerService
from worker.settings import WorkerSettings

DELTA = 1e-5


def local(z: float, clip: float = 1.0) -> TrainConfig:
    return TrainConfig(update_kind="delta", privacy=ClientPrivacy(clip=clip, noise_multiplier=z))


def test_a_worker_with_a_floor_refuses_raw_or_under_noised_configs() -> None:
    guard = LocalGuard(min_noise=1.0)

    # an aggregator sending z = 0 (or no privacy) used to receive raw deltas
    assert guard.refusal(TrainConfig(update_kind="delta")) is not None
    assert guard.refusal(TrainConfig(update_kind="weights")) is not None
    assert guard.refusal(local(0.0)) is not None
    assert guard.refusal(local(0.99)) is not None
    assert guard.refusal(local(1.0)) is None and guard.refusal(local(3.0)) is None


def test_without_terms_a_worker_follows_the_config() -> None:
    assert LocalGuard().refusal(TrainConfig(update_kind="weights")) is None


def test_a_worker_stops_before_its_own_budget_is_exceeded(tmp_path: Path) -> None:
    budget = epsilon(Ledger().add(GaussianEvent(2.0), 6), DELTA) + 1e-9
    guard = local_guard(min_noise=None, budget=budget, delta=DELTA, ledger=str(tmp_path / "l.json"))
    charged = 0
    while guard.refusal(local(2.0)) is None:
        guard.charge(local(2.0))
        charged += 1

    refused = guard.refusal(local(2.0))
    assert charged == 6 and refused is not None and refused.final

    restarted = local_guard(
        min_noise=None, budget=budget, delta=DELTA, ledger=str(tmp_path / "l.json")
    )
    assert restarted.refusal(local(2.0)) is not None  # the file remembers the six updates
    assert restarted.spending is not None and restarted.spending.ledger.total() == 6


def test_a_budget_without_noise_is_refused_not_charged_as_infinite(tmp_path: Path) -> None:
    guard = LocalGuard(budget=1.0, spending=Spending(delta=DELTA))

    refused = guard.refusal(local(0.0))

    assert refused is not None and not refused.final
    assert guard.charge(TrainConfig(update_kind="delta")) is None


def test_a_local_budget_needs_a_ledger_file() -> None:
    with pytest.raises(ValidationError, match="--local-dp-ledger"):
        WorkerSettings(local_dp_budget=3.0)


class CountingTrainer:
    def __init__(self) -> None:
        self.fits = 0

    def initial_weights(self) -> dict[str, np.ndarray]:
        return {"w": np.zeros(2, np.float32)}

    def fit(self, weights: dict[str, np.ndarray], config: TrainConfig) -> FitResult:
        self.fits += 1
        return FitResult(weights, 1, {})

    def evaluate(self, weights: dict[str, np.ndarray], config: TrainConfig) -> EvalResult:
        return EvalResult(0.0, 1, {})


def test_the_worker_does_not_train_on_a_config_below_its_floor() -> None:
    trainer = CountingTrainer()
    worker = WorkerService(WorkerSettings(local_dp_min_noise=1.0), trainer)
    worker.inbox.latest = ModelVersion(
        run_id="r", version=3, created_at=0.0, config=local(0.0), arrays=trainer.initial_weights()
    )

    worker._maybe_start_training(time.monotonic())

    assert worker.fitting.task is None and worker.fitting.last_base == 3
