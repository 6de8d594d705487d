"""Numerics: buffers accumulate in float64, and a step that would not be finite never happens."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.aggregator import Aggregator, Applied, NonFiniteModel
from aggregator.core.fedavg import FedAvg
from aggregator.core.fedbuff import FedBuff
from aggregator.core.staleness import Constant
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Contribution
from aggregator.core.validation import Rejected
from schemas.messages import ClientUpdate
from training.weights import Weights


def contribution(uid: str, value: float, examples: int) -> Contribution:
    return Contribution(
        uid, "w", staleness=0, num_examples=examples, arrays={"w": np.full(2, value, np.float32)}
    )


def test_two_finite_updates_with_huge_example_counts_do_not_overflow_fedbuff() -> None:
    """The reported case: staleness x examples x delta overflowed a float32 buffer to inf."""
    strategy = FedBuff(buffer_size=2, staleness=Constant(), sample_weighting=True)
    model = {"w": np.zeros(2, np.float32)}

    strategy.add(model, contribution("update-a", 3e38, 2**40))
    outcome = strategy.add(model, contribution("update-b", 3e38, 2**40))

    assert outcome.stepped
    np.testing.assert_array_equal(model["w"], np.float32(3e38))


def test_the_accumulator_is_float64_for_fedavg_too() -> None:
    strategy = FedAvg()
    model: Weights = {"w": np.zeros(2, np.float32), "n": np.zeros(1, np.int64)}
    strategy.add(
        model,
        Contribution(
            "u", "w", 0, 2**40, {"w": np.full(2, 3e38, np.float32), "n": np.ones(1, np.int64)}
        ),
    )
    assert strategy.state()[1]["w"].dtype == np.float64


def delta(uid: str, value: float, base: int = 0) -> ClientUpdate:
    return ClientUpdate(
        update_id=uid,
        worker_id="w1",
        base_version=base,
        num_examples=1,
        update_kind="delta",
        train_seconds=0.0,
        arrays={"w": np.full(2, value, np.float32)},
    )


def core_with(strategy: FedBuff, value: float = 0.0) -> Aggregator:
    state = AggregatorState("r", 0, {"w": np.full(2, value, np.float32)}, AppliedWindow(100))
    return Aggregator(state, strategy, max_staleness=None)


def test_an_update_whose_step_would_not_be_finite_is_rejected_and_changes_nothing() -> None:
    core = core_with(FedBuff(buffer_size=1, server_lr=1e30, staleness=Constant()))

    outcome = core.handle(delta("too-big-a-step", 1e10))

    assert isinstance(outcome, Rejected) and outcome.reason == "non-finite-step", outcome
    assert core.state.version == 0 and core.strategy.pending() == 0
    np.testing.assert_array_equal(core.state.weights["w"], np.zeros(2, np.float32))
    assert core.state.counters.rejected["non-finite-step"] == 1
    assert isinstance(core.handle(delta("a-small-step", 1e-10)), Applied)


def test_the_culprit_is_refused_when_it_enters_the_buffer_not_when_the_buffer_steps() -> None:
    core = core_with(FedBuff(buffer_size=3, server_lr=1e20, staleness=Constant()), value=2e38)
    assert isinstance(core.handle(delta("honest-update-1", 1e-30)), Applied)

    outcome = core.handle(delta("the-culprit-0001", 1.8e19))  # valid alone, too much in the step

    assert isinstance(outcome, Rejected) and outcome.reason == "non-finite-step"
    assert isinstance(core.handle(delta("honest-update-2", 1e-30)), Applied)
    assert core.strategy.pending() == 2


def test_a_non_finite_model_is_never_passed_off_as_a_version() -> None:
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()))
    core.state.weights["w"][0] = np.inf  # however it got there

    with pytest.raises(NonFiniteModel, match="w"):
        core.check_publishable()


def test_a_finite_model_is_publishable() -> None:
    core_with(FedBuff(buffer_size=1)).check_publishable()
