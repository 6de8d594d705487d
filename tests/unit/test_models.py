"""Built-in models: analytic gradients match finite differences; training learns; it is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.messages import TrainConfig
from tasks.builtin import make_trainer
from tasks.models import get_model
from training.trainer import TrainerContext


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_gradients_match_finite_differences(name: str) -> None:
    rng = np.random.default_rng(0)
    model = get_model(name, hidden=5)
    weights = {k: v.astype(np.float64) for k, v in model.init(rng, 4, 3).items()}
    weights = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in weights.items()}
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    _, grads = model.loss_and_grad(weights, x, y)
    for name_, w in weights.items():
        idx = tuple(rng.integers(0, s) for s in w.shape)
        eps = 1e-5
        w[idx] += eps
        up, _ = model.loss_and_grad(weights, x, y)
        w[idx] -= 2 * eps
        down, _ = model.loss_and_grad(weights, x, y)
        w[idx] += eps
        assert grads[name_][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_per_example_gradients_average_to_the_batch_gradient(name: str) -> None:
    rng = np.random.default_rng(1)
    model = get_model(name, hidden=5)
    weights = model.init(rng, 4, 3)
    x, y = rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)
    _, grads = model.loss_and_grad(weights, x, y)
    per = model.per_example_grads(weights, x, y)
    for k in grads:
        np.testing.assert_allclose(per[k].mean(axis=0), grads[k], rtol=1e-4, atol=1e-6)


def test_central_training_on_digits_learns() -> None:
    trainer = make_trainer(TrainerContext("aggregator", 0, 1, seed=0, options={"partition": "iid"}))
    config = TrainConfig(learning_rate=0.3)
    weights = trainer.initial_weights()
    before = float(trainer.evaluate(weights, config).metrics["accuracy"])
    for _ in range(10):
        weights = trainer.fit(weights, config).weights
    after = float(trainer.evaluate(weights, config).metrics["accuracy"])
    assert before < 0.2 and after > 0.9


def test_fit_is_deterministic_under_a_seed() -> None:
    def run() -> np.ndarray:
        trainer = make_trainer(TrainerContext("worker", 1, 4, seed=3, options={"model": "mlp"}))
        w = trainer.initial_weights()
        return trainer.fit(w, TrainConfig()).weights["W1"]

    np.testing.assert_array_equal(run(), run())
