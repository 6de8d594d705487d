"""How every strategy treats non-float model entries (a BatchNorm's int64 ``num_batches_tracked``):
they are the aggregator's and keep its value, whatever an update says; float buffers (running
statistics) are aggregated like parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from aggregator.core.fedasync import FedAsync
from aggregator.core.fedavg import FedAvg
from aggregator.core.fedbuff import FedBuff
from aggregator.core.private import PrivacyConfig, PrivateStrategy
from aggregator.core.robust_fedbuff import RobustFedBuff
from aggregator.core.staleness import Constant
from aggregator.core.strategy import Contribution, Strategy
from privacy.participation import Budget
from training.weights import Weights, aggregated, float_entries


def model() -> Weights:
    return {
        "conv.weight": np.zeros(3, np.float32),
        "bn.running_mean": np.zeros(2, np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "mask": np.array([True, False]),
    }


def update(value: float, counter: int) -> Weights:
    return {
        "conv.weight": np.full(3, value, np.float32),
        "bn.running_mean": np.full(2, value, np.float32),
        "bn.num_batches_tracked": np.array(counter, np.int64),
        "mask": np.array([False, True]),
    }


def contribution(arrays: Weights, worker: str = "a") -> Contribution:
    return Contribution(
        update_id=f"u-{worker}", worker_id=worker, staleness=0, num_examples=1, arrays=arrays
    )


def central_dp(inner: Strategy) -> Strategy:
    config = PrivacyConfig(
        mode="central", clip=10.0, noise_multiplier=0.5, budget=Budget(None, 1e-5)
    )
    return PrivateStrategy(inner, config, np.random.default_rng(0), per_release=1)


STEPPING: dict[str, Callable[[], Strategy]] = {
    "fedasync-weights": lambda: FedAsync(alpha=0.5, staleness=Constant()),
    "fedasync-delta": lambda: FedAsync(alpha=0.5, staleness=Constant(), update_kind="delta"),
    "fedbuff": lambda: FedBuff(buffer_size=1, staleness=Constant()),
    "robust-median": lambda: RobustFedBuff(rule="median", buffer_size=1, staleness=Constant()),
    "central-dp-fedbuff": lambda: central_dp(FedBuff(buffer_size=1, sample_weighting=False)),
}


@pytest.mark.parametrize("name", sorted(STEPPING))
def test_non_float_entries_keep_the_aggregators_value(name: str) -> None:
    weights, strategy = model(), STEPPING[name]()

    outcome = strategy.add(weights, contribution(update(2.0, 1000)))

    assert outcome.stepped
    assert weights["bn.num_batches_tracked"] == 7
    assert weights["bn.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(weights["mask"], [True, False])


@pytest.mark.parametrize("name", ["fedasync-weights", "fedasync-delta", "fedbuff"])
def test_float_buffers_are_aggregated_like_parameters(name: str) -> None:
    weights, strategy = model(), STEPPING[name]()

    strategy.add(weights, contribution(update(2.0, 0)))

    # FedAsync at alpha 0.5: halfway to 2 (weights) or half of the delta 2; FedBuff K=1: all of it.
    expected = {"fedasync-weights": 1.0, "fedasync-delta": 1.0, "fedbuff": 2.0}[name]
    np.testing.assert_allclose(weights["bn.running_mean"], expected)
    np.testing.assert_allclose(weights["conv.weight"], expected)


def test_synchronous_fedavg_keeps_non_float_entries() -> None:
    weights, strategy = model(), FedAvg()
    strategy.add(weights, contribution(update(2.0, 50), "a"))
    strategy.add(weights, contribution(update(4.0, 90), "b"))

    assert strategy.close_round(weights, frozenset({"a", "b"}))

    np.testing.assert_allclose(weights["bn.running_mean"], 3.0)
    assert weights["bn.num_batches_tracked"] == 7


def test_float_entries_are_the_aggregated_ones() -> None:
    weights = model()

    assert sorted(float_entries(weights)) == ["bn.running_mean", "conv.weight"]
    assert float_entries(weights)["conv.weight"] is weights["conv.weight"]
    assert not aggregated(np.array(3, np.int64)) and aggregated(np.array(3.0, np.float16))
