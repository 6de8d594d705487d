"""FedAsync and FedBuff against hand-computed values and against FedAvg."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.core.arithmetic import mix_into, scaled_add, step_into, weighted_average
from aggregator.core.fedasync import FedAsync
from aggregator.core.fedbuff import FedBuff
from aggregator.core.staleness import Constant, Polynomial
from aggregator.core.strategy import Contribution
from training.weights import l2_norm


def contribution(
    arrays: dict[str, np.ndarray], *, staleness: int = 0, n: int = 1, uid: str = "u"
) -> Contribution:
    return Contribution(
        update_id=uid, worker_id="w", staleness=staleness, num_examples=n, arrays=arrays
    )


def test_fedasync_alpha_half_polynomial_half_at_staleness_three() -> None:
    # a_t = 0.5 * (1 + 3)^-0.5 = 0.25; x = 0.75 * 4 + 0.25 * 8 = 5
    model = {"w": np.full(3, 4.0, np.float32)}
    strategy = FedAsync(alpha=0.5, staleness=Polynomial(0.5))

    outcome = strategy.add(model, contribution({"w": np.full(3, 8.0, np.float32)}, staleness=3))

    assert outcome.stepped and outcome.weight == pytest.approx(0.25)
    np.testing.assert_allclose(model["w"], 5.0)


def test_fedasync_sample_weighting_scales_by_relative_size() -> None:
    model = {"w": np.zeros(2)}
    strategy = FedAsync(alpha=0.5, staleness=Constant(), sample_weighting=True)
    strategy.add(model, contribution({"w": np.zeros(2)}, n=10))

    outcome = strategy.add(model, contribution({"w": np.ones(2)}, n=30))

    # running mean n = (10 + 30) / 2 = 20, so a_t = 0.5 * 30 / 20 = 0.75
    assert outcome.weight == pytest.approx(0.75)
    np.testing.assert_allclose(model["w"], 0.75)


def test_fedbuff_k3_steps_once_with_the_weighted_mean_delta() -> None:
    model = {"w": np.zeros(2, np.float32)}
    strategy = FedBuff(
        buffer_size=3, server_lr=1.0, staleness=Polynomial(0.5), sample_weighting=True
    )
    deltas = [
        (np.array([3.0, 0.0], np.float32), 0, 1),
        (np.array([0.0, 6.0], np.float32), 3, 2),
        (np.array([3.0, 3.0], np.float32), 0, 1),
    ]

    outcomes = [strategy.add(model, contribution({"w": d}, staleness=s, n=n)) for d, s, n in deltas]

    assert [o.stepped for o in outcomes] == [False, False, True]
    # weights s*n: 1, 0.5*2 = 1, 1; sum n = 4: step = (3+0+3, 0+6+3) / 4 = (1.5, 2.25)
    np.testing.assert_allclose(model["w"], [1.5, 2.25])
    assert strategy.pending() == 0


def test_fedbuff_does_not_touch_the_model_before_the_buffer_fills() -> None:
    model = {"w": np.ones(2)}
    strategy = FedBuff(buffer_size=2)

    strategy.add(model, contribution({"w": np.ones(2)}))

    np.testing.assert_array_equal(model["w"], 1.0)
    assert strategy.pending() == 1


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 500), min_size=1, max_size=8),
    seed=st.integers(0, 2**31),
)
def test_fedbuff_with_k_all_workers_at_zero_staleness_equals_sample_weighted_fedavg(
    sizes: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    start = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    locals_ = [{k: v + rng.standard_normal(v.shape) for k, v in start.items()} for _ in sizes]
    model = {k: v.copy() for k, v in start.items()}
    strategy = FedBuff(
        buffer_size=len(sizes), server_lr=1.0, staleness=Polynomial(0.5), sample_weighting=True
    )

    for local, n in zip(locals_, sizes, strict=False):
        strategy.add(model, contribution({k: local[k] - start[k] for k in start}, n=n))

    expected = weighted_average(zip(locals_, sizes, strict=False))
    for name in start:
        np.testing.assert_allclose(model[name], expected[name], rtol=1e-10, atol=1e-10)


def test_fedbuff_state_survives_a_restore() -> None:
    model = {"w": np.zeros(3)}
    a = FedBuff(buffer_size=2)
    a.add(model, contribution({"w": np.ones(3)}, n=2))
    scalars, arrays = a.state()

    b = FedBuff(buffer_size=2)
    b.restore(scalars, {k: v.copy() for k, v in arrays.items()})
    b.add(model, contribution({"w": np.full(3, 4.0)}, n=2))

    np.testing.assert_allclose(model["w"], 2.5)  # (2*1 + 2*4) / 4


def test_mix_into_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    x, y = (
        rng.standard_normal(1000).astype(np.float32),
        rng.standard_normal(1000).astype(np.float32),
    )
    expected = 0.7 * x + 0.3 * y
    model = {"x": x.copy()}

    mix_into(model, {"x": y}, 0.3)

    np.testing.assert_allclose(model["x"], expected, rtol=1e-5, atol=1e-6)


def test_scaled_add_is_exact_across_chunk_boundaries() -> None:
    dst = np.ones(700_001, np.float32)
    src = np.arange(700_001, dtype=np.float32)

    scaled_add(dst, src, 0.5)

    np.testing.assert_allclose(dst, 1 + 0.5 * src)


def test_step_into_keeps_the_model_dtype() -> None:
    model = {"w": np.zeros(4, np.float32)}
    step_into(model, {"w": np.ones(4)}, 0.25)
    assert model["w"].dtype == np.float32 and model["w"][0] == 0.25


def test_l2_norm_is_global() -> None:
    assert l2_norm({"a": np.array([3.0]), "b": np.array([4.0])}) == pytest.approx(5.0)


@pytest.mark.parametrize("alpha", [0.0, 1.5])
def test_fedasync_rejects_alpha_outside_unit_interval(alpha: float) -> None:
    with pytest.raises(ValueError):
        FedAsync(alpha=alpha)
