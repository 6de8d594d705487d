"""TorchTrainer: the trainer contract over a torch module, deterministic under a seed."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from schemas.messages import ModelVersion, TrainConfig
from torchtrain.trainer import Batches, TorchTrainer
from training.trainer import Trainer
from worker.update import build_update, update_arrays

CONFIG = TrainConfig(local_epochs=2, learning_rate=0.1)


def model_version(weights: dict[str, np.ndarray]) -> ModelVersion:
    return ModelVersion(run_id="r", version=0, created_at=0.0, config=CONFIG, arrays=weights)


def batches(seed: int, n: int = 96) -> Batches:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return cast(Batches, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True))


def trainer(seed: int = 3) -> TorchTrainer:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.3), torch.nn.ReLU(),
        torch.nn.Linear(8, 2),
    )  # fmt: skip
    return TorchTrainer(module, batches(1), batches(2), seed=seed)


def test_it_is_a_trainer_and_pins_torch_to_one_thread() -> None:
    torch.set_num_threads(2)

    built = trainer()

    assert isinstance(built, Trainer)
    assert torch.get_num_threads() == 1


def test_the_same_seed_makes_the_same_fits() -> None:
    a, b = trainer(seed=3), trainer(seed=3)
    weights = a.initial_weights()

    runs = []
    for t in (a, b):
        w = weights
        for _ in range(2):  # the second fit draws fresh (but seeded) shuffles and dropout
            w = t.fit(w, CONFIG).weights
        runs.append(w)

    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in weights)
    other = trainer(seed=4).fit(weights, CONFIG).weights
    assert not np.array_equal(other["0.weight"], a.fit(weights, CONFIG).weights["0.weight"])


def test_a_fit_trains_float_buffers_and_hands_back_the_counter_it_was_given() -> None:
    t = trainer()
    weights = t.initial_weights()

    fit = t.fit(weights, CONFIG)

    assert not np.array_equal(fit.weights["1.running_mean"], weights["1.running_mean"])
    assert fit.weights["1.num_batches_tracked"] == weights["1.num_batches_tracked"] == 0
    assert int(t.module.state_dict()["1.num_batches_tracked"]) == 12  # 2 epochs x 6 batches
    assert fit.num_examples == 96 and fit.metrics["steps"] == 12
    assert np.isfinite(float(fit.metrics["train_loss"]))


def test_the_delta_a_worker_sends_is_zero_on_the_counter() -> None:
    t = trainer()
    weights = t.initial_weights()
    fit = t.fit(weights, CONFIG)

    delta = update_arrays(weights, fit.weights, "delta")

    assert delta["1.num_batches_tracked"] == 0
    assert delta["1.num_batches_tracked"].dtype == np.int64
    assert np.abs(delta["0.weight"]).max() > 0


def test_training_improves_the_evaluation_on_the_test_loader() -> None:
    t = trainer()
    weights = t.initial_weights()
    before = t.evaluate(weights, CONFIG)

    for _ in range(5):
        weights = t.fit(weights, CONFIG).weights
    after = t.evaluate(weights, CONFIG)

    assert after.num_examples == 96
    assert after.loss < before.loss
    assert float(after.metrics["accuracy"]) >= 0.85


def test_a_diverged_fit_still_makes_a_valid_update() -> None:
    t = trainer()
    t.loss = lambda out, y: torch.nn.functional.cross_entropy(out, y) * float("nan")
    weights = t.initial_weights()

    fit = t.fit(weights, CONFIG)
    update = build_update("w", model_version(weights), fit, 0.0)

    assert fit.metrics["train_loss"] == "nan"
    assert update.metrics["train_loss"] == "nan"
