"""Synchronous FedAvg: rounds over the active workers, and the roster that says who is active."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Aggregator
from aggregator.core.arithmetic import weighted_average
from aggregator.core.fedavg import FedAvg
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Contribution
from schemas.messages import ClientUpdate


def contribution(
    arrays: dict[str, np.ndarray], worker: str, *, staleness: int = 0, n: int = 1
) -> Contribution:
    return Contribution(
        update_id=f"u-{worker}",
        worker_id=worker,
        staleness=staleness,
        num_examples=n,
        arrays=arrays,
    )


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 500), min_size=1, max_size=8), seed=st.integers(0, 2**31))
def test_a_round_of_every_worker_at_zero_staleness_equals_sample_weighted_fedavg(
    sizes: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    start = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    locals_ = [{k: v + rng.standard_normal(v.shape) for k, v in start.items()} for _ in sizes]
    model = {k: v.copy() for k, v in start.items()}
    workers = [f"w{i}" for i in range(len(sizes))]
    strategy = FedAvg()

    for worker, local, n in zip(workers, locals_, sizes, strict=False):
        strategy.add(model, contribution({k: local[k] - start[k] for k in start}, worker, n=n))
    stepped = strategy.close_round(model, frozenset(workers))

    assert stepped
    expected = weighted_average(zip(locals_, sizes, strict=False))
    for name in start:
        np.testing.assert_allclose(model[name], expected[name], rtol=1e-10, atol=1e-10)


def test_the_round_waits_for_every_active_worker() -> None:
    model = {"w": np.zeros(2)}
    strategy = FedAvg()
    strategy.add(model, contribution({"w": np.ones(2)}, "a"))

    assert not strategy.close_round(model, frozenset({"a", "b"}))
    np.testing.assert_array_equal(model["w"], 0.0)
    assert strategy.close_round(model, frozenset({"a"}))  # b timed out of the roster
    np.testing.assert_array_equal(model["w"], 1.0)


def test_late_and_repeated_updates_count_for_nothing() -> None:
    model = {"w": np.zeros(2)}
    strategy = FedAvg()
    strategy.add(model, contribution({"w": np.ones(2)}, "a"))

    late = strategy.add(model, contribution({"w": np.full(2, 9.0)}, "b", staleness=1))
    again = strategy.add(model, contribution({"w": np.full(2, 9.0)}, "a"))
    strategy.close_round(model, frozenset({"a"}))

    assert late.weight == 0.0 and again.weight == 0.0
    np.testing.assert_array_equal(model["w"], 1.0)


def test_min_updates_holds_the_round_open() -> None:
    model = {"w": np.zeros(1)}
    strategy = FedAvg(min_updates=2)
    strategy.add(model, contribution({"w": np.ones(1)}, "a"))

    assert not strategy.close_round(model, frozenset({"a"}))


def test_an_open_round_survives_a_restore() -> None:
    model = {"w": np.zeros(1)}
    a = FedAvg()
    a.add(model, contribution({"w": np.full(1, 2.0)}, "a", n=1))
    scalars, arrays = a.state()

    b = FedAvg()
    b.restore(scalars, {k: v.copy() for k, v in arrays.items()})
    b.add(model, contribution({"w": np.full(1, 5.0)}, "a", n=1))  # a already contributed: ignored
    b.add(model, contribution({"w": np.full(1, 8.0)}, "b", n=3))
    b.close_round(model, frozenset({"a", "b"}))

    np.testing.assert_allclose(model["w"], (2.0 + 3 * 8.0) / 4)


def test_the_core_makes_a_version_only_when_the_round_closes() -> None:
    weights = {"w": np.zeros(2, np.float32)}
    state = AggregatorState(run_id="r", version=0, weights=weights, applied=AppliedWindow(10))
    core = Aggregator(state, FedAvg(), max_staleness=None)
    update = ClientUpdate(
        update_id="update-0001",
        worker_id="a",
        base_version=0,
        num_examples=3,
        update_kind="delta",
        train_seconds=0.1,
        arrays={"w": np.ones(2, np.float32)},
    )

    core.handle(update)
    waiting = core.close_round(frozenset({"a", "b"}))
    closed = core.close_round(frozenset({"a"}))

    assert (waiting, closed, core.state.version) == (False, True, 1)


def test_the_roster_forgets_workers_after_the_timeout() -> None:
    roster = ActiveWorkers(timeout=10.0)
    roster.seen("a", 0.0)
    roster.seen("b", 5.0)

    assert roster.active(10.0) == {"a", "b"}
    assert roster.active(12.0) == {"b"}
    assert roster.expires_at("b") == 15.0 and roster.expires_at("a") is None


def test_fedavg_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        FedAvg(min_updates=0)


def test_active_workers_survive_a_snapshot_with_their_order_and_remaining_time() -> None:
    before = ActiveWorkers(timeout=10.0)
    before.seen("old", 100.0)
    before.seen("new", 104.0)

    after = ActiveWorkers(timeout=10.0)
    after.restore(before.snapshot(105.0), now=5000.0)

    assert after.active(5000.0) == {"old", "new"}
    assert after.expires_at("old") == pytest.approx(5005.0)
    assert after.active(5005.5) == {"new"}
