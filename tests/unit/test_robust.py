"""Norm bound, coordinate-wise median and trimmed mean, and the robust FedBuff buffer."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.aggregator import Aggregator, Applied
from aggregator.core.byzantine import centered_clip, krum_scores, multi_krum
from aggregator.core.fair_share import ArrivalShare
from aggregator.core.fedasync import FedAsync
from aggregator.core.robust import (
    MIN_HISTORY,
    NormBound,
    Screened,
    coordinate_median,
    trim_count,
    trimmed_mean,
    update_norm,
)
from aggregator.core.robust_fedbuff import RobustFedBuff
from aggregator.core.staleness import Constant
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Contribution, StepOutcome
from aggregator.core.validation import Rejected
from schemas.messages import ClientUpdate

MODEL = {"w": np.zeros(4, np.float32)}


def delta(value: float) -> dict[str, np.ndarray]:
    return {"w": np.full(4, value, np.float32)}


def test_update_norm_of_weights_is_the_distance_from_the_model() -> None:
    model = {"w": np.full(4, 1.0, np.float32)}

    assert update_norm({"w": np.full(4, 3.0, np.float32)}, model, "weights") == pytest.approx(4.0)
    assert update_norm({"w": np.full(4, 3.0, np.float32)}, model, "delta") == pytest.approx(6.0)


def test_update_norm_does_not_overflow_in_float32() -> None:
    assert update_norm(delta(1e30), MODEL, "delta") == pytest.approx(2e30)


def calibrated(bound: NormBound, value: float = 1.0) -> NormBound:
    """Feed the calibration updates from five workers (refused); the next one is screened."""
    for i in range(MIN_HISTORY):
        verdict = bound.screen(delta(value), MODEL, "delta", f"w{i}")
        assert isinstance(verdict, Rejected) and verdict.reason == "norm-calibrating"
    assert isinstance(bound.screen(delta(value), MODEL, "delta", "w0"), Screened)
    return bound


def test_the_norm_bound_rejects_an_update_far_above_the_reference() -> None:
    bound = calibrated(NormBound(factor=3.0))
    assert isinstance(bound.screen(delta(1.1), MODEL, "delta", "w1"), Screened)

    verdict = bound.screen(delta(100.0), MODEL, "delta", "w1")

    assert isinstance(verdict, Rejected) and verdict.reason == "norm-bound"


def test_the_norm_bound_clips_to_the_limit_when_asked() -> None:
    bound = calibrated(NormBound(factor=2.0, action="clip", clip_to=None))

    verdict = bound.screen(delta(100.0), MODEL, "delta", "w1")

    # five votes of 2 -> reference 2 -> limit 4
    assert isinstance(verdict, Screened) and verdict.clipped
    assert update_norm(verdict.arrays, MODEL, "delta") == pytest.approx(4.0, rel=1e-5)
    assert verdict.norm == pytest.approx(4.0)  # what the worker's vote records


def test_admitted_updates_are_clipped_to_the_reference_norm() -> None:
    bound = calibrated(NormBound(factor=3.0))

    verdict = bound.screen(delta(2.5), MODEL, "delta", "w1")  # norm 5, limit 6, reference 2

    assert isinstance(verdict, Screened) and verdict.clipped
    assert update_norm(verdict.arrays, MODEL, "delta") == pytest.approx(2.0, rel=1e-5)
    assert verdict.norm == pytest.approx(5.0)


def test_clipping_a_weights_update_moves_it_towards_the_model() -> None:
    model = {"w": np.ones(4, np.float32)}
    bound = NormBound(factor=2.0, action="clip", clip_to=None)
    for i in range(MIN_HISTORY):
        bound.screen({"w": np.full(4, 1.5, np.float32)}, model, "weights", f"w{i}")

    verdict = bound.screen({"w": np.full(4, 101.0, np.float32)}, model, "weights", "w0")

    assert isinstance(verdict, Screened)
    np.testing.assert_allclose(
        verdict.arrays["w"], 2.0, rtol=1e-5
    )  # 1 + (2 * 1.0) / 2 per coordinate


def test_nothing_passes_before_the_bound_is_calibrated() -> None:
    bound = NormBound(factor=3.0)

    verdict = bound.screen(delta(1000.0), MODEL, "delta", "w0")

    assert isinstance(verdict, Rejected) and verdict.reason == "norm-calibrating"
    assert bound.bound() is None


def test_the_bound_follows_honest_updates_as_they_shrink() -> None:
    bound = NormBound(factor=3.0, window=3)
    screened = calibrated(bound, 10.0)  # votes: w0 (20, 20), w1..w4 (20)
    for value in (1.0, 1.0, 1.0):
        for worker in ("w0", "w1", "w2"):
            verdict = bound.screen(delta(value), MODEL, "delta", worker)
            assert isinstance(verdict, Screened)
            screened.admit(worker, verdict)

    # votes: w0..w2 median of (2, 2, 2) = 2; w3, w4 still 20 -> median of votes 2
    assert bound.bound() == pytest.approx(3.0 * 2.0)


def test_coordinate_median_ignores_a_minority_of_outliers() -> None:
    stack = np.array([[1.0, 2.0], [1.1, 2.1], [0.9, 1.9], [1e6, -1e6], [-1e6, 1e6]])

    np.testing.assert_allclose(coordinate_median(stack), [1.0, 2.0])


def test_trimmed_mean_drops_the_extremes_per_coordinate() -> None:
    stack = np.array([[1.0], [2.0], [3.0], [100.0], [-100.0]])

    np.testing.assert_allclose(trimmed_mean(stack, 1), [2.0])
    np.testing.assert_allclose(trimmed_mean(stack, 0), [6.0 / 5])
    with pytest.raises(ValueError):
        trimmed_mean(stack, 3)


def test_trim_count_always_leaves_a_middle() -> None:
    assert [trim_count(10, 0.2), trim_count(8, 0.25), trim_count(2, 0.49), trim_count(3, 0.4)] == [
        2,
        2,
        0,
        1,
    ]


def contribution(value: float, staleness: int = 0, worker: str | None = None) -> Contribution:
    return Contribution(
        update_id=f"u{value}",
        worker_id=worker or f"w{value}",
        staleness=staleness,
        num_examples=10**9,
        arrays=delta(value),
    )


@pytest.mark.parametrize("rule", ["median", "trimmed-mean"])
def test_robust_fedbuff_steps_by_the_robust_aggregate_of_its_buffer(rule: str) -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = RobustFedBuff(rule=rule, buffer_size=5, trim_fraction=0.2, staleness=Constant())  # type: ignore[arg-type]
    values = (1.0, 1.2, 0.8, 1000.0, 1.0)
    outcomes = [strategy.add(model, contribution(v, worker=f"w{i}")) for i, v in enumerate(values)]

    assert [o.stepped for o in outcomes] == [False] * 4 + [True]
    np.testing.assert_allclose(
        model["w"], 1.0 if rule == "median" else (1.0 + 1.2 + 1.0) / 3, rtol=1e-6
    )
    assert strategy.pending() == 0


def offer(
    strategy: RobustFedBuff, model: dict[str, np.ndarray], value: float, worker: str
) -> StepOutcome | Rejected:
    """What the core does with a valid update: ask the strategy, then add."""
    refused = strategy.refuse(worker)
    return (
        refused if refused is not None else strategy.add(model, contribution(value, worker=worker))
    )


def test_a_fast_worker_fills_no_more_than_its_share_of_a_robust_buffer() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = RobustFedBuff(rule="median", buffer_size=3, staleness=Constant())
    for worker in ("a", "b", "attacker"):  # one buffer: three workers take part
        offer(strategy, model, 0.0, worker)

    outcomes = [offer(strategy, model, v, "attacker") for v in (100.0, 101.0, 102.0)]
    offer(strategy, model, 1.0, "a")
    stepped = offer(strategy, model, 2.0, "b")

    assert [type(o).__name__ for o in outcomes] == ["StepOutcome", "StepOutcome", "Rejected"]
    assert isinstance(outcomes[2], Rejected) and outcomes[2].reason == "participation-limit"
    assert isinstance(stepped, StepOutcome) and stepped.stepped
    np.testing.assert_allclose(
        model["w"], 2.0
    )  # median of (100, 1, 2): the held 101 waits for the next buffer
    assert strategy.pending() == 1 and strategy.membership.members == ["attacker"]


def test_a_robust_buffer_still_fills_when_workers_leave() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = RobustFedBuff(rule="median", buffer_size=4, staleness=Constant())
    for worker in ("w1", "w2", "w3", "w4"):
        offer(strategy, model, 1.0, worker)
    steps = 0

    for i in range(40):  # only w1 and w2 remain
        outcome = offer(strategy, model, 1.0, ("w1", "w2")[i % 2])
        steps += int(getattr(outcome, "stepped", False))

    assert strategy.membership.share() == 2
    assert steps >= 5


def test_robust_fedbuff_survives_a_checkpoint_mid_buffer() -> None:
    model = {"w": np.zeros(4, np.float32)}
    first = RobustFedBuff(buffer_size=3, staleness=Constant())
    first.add(model, contribution(1.0))
    first.add(model, contribution(2.0))
    scalars, arrays = first.state()

    second = RobustFedBuff(buffer_size=3, staleness=Constant())
    second.restore(scalars, {k: np.array(v) for k, v in arrays.items()})
    outcome = second.add(model, contribution(3.0))

    assert outcome.stepped
    np.testing.assert_allclose(model["w"], 2.0)


def test_the_core_rejects_a_scaled_update_with_the_norm_bound() -> None:
    weights = {"w": np.zeros(4, np.float32)}
    state = AggregatorState(run_id="r", version=0, weights=weights, applied=AppliedWindow(100))
    core = Aggregator(
        state, FedAsync(alpha=0.5), max_staleness=None, norm_bound=NormBound(factor=3.0)
    )

    def update(i: int, value: float) -> ClientUpdate:
        return ClientUpdate(
            update_id=f"update-{i:04d}",
            worker_id=f"w{i % 6}",
            base_version=core.state.version,
            num_examples=1,
            update_kind="weights",
            train_seconds=0.0,
            arrays={"w": core.state.weights["w"] + np.float32(value)},
        )

    honest = [core.handle(update(i, 0.1)) for i in range(MIN_HISTORY + 2)]
    attack = core.handle(update(99, 100.0))

    assert all(isinstance(o, Applied) for o in honest[MIN_HISTORY:])
    assert isinstance(attack, Rejected) and attack.reason == "norm-bound"
    assert core.state.counters.rejected == {"norm-calibrating": MIN_HISTORY, "norm-bound": 1}
    assert np.abs(core.state.weights["w"]).max() < 1.0


# -- whole-vector rules: Krum and centered clipping -------------------------------------------


def test_krum_scores_sum_the_squared_distances_to_the_nearest_neighbours() -> None:
    stack = np.array([[0.0], [0.1], [0.2], [0.3], [10.0]])

    scores = krum_scores(stack, byzantine=1)  # K - f - 2 = 2 neighbours

    # row 1: 0.01 + 0.01; row 4: 9.7^2 + 9.8^2
    np.testing.assert_allclose(scores, [0.05, 0.02, 0.02, 0.05, 94.09 + 96.04], rtol=1e-9)


def test_krum_keeps_the_best_scored_delta_and_multi_krum_the_mean_of_the_best() -> None:
    stack = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [50.0, 50.0], [-50.0, 50.0]])

    np.testing.assert_allclose(multi_krum(stack, byzantine=1, keep=1), [0.1, 0.0])
    np.testing.assert_allclose(multi_krum(stack, byzantine=1, keep=3), [0.1, 0.0])
    with pytest.raises(ValueError):
        krum_scores(stack, byzantine=2)  # 5 is not > 2 * 2 + 2


def test_centered_clipping_bounds_an_outlier_by_the_median_distance() -> None:
    stack = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [-100.0, 0.0]])

    one = centered_clip(stack, np.zeros(2), iterations=1)
    three = centered_clip(stack, np.zeros(2), iterations=3)

    # distances 1, 1, 1, 100 -> tau = 1: the outlier counts as -1: (1 + 1 + 1 - 1) / 4
    np.testing.assert_allclose(one, [0.5, 0.0])
    # second pass from 0.5: distances 0.5 x 3 and 100.5 -> tau 0.5 -> + (0.5 * 3 - 0.5) / 4
    np.testing.assert_allclose(three[0], 0.75 + 0.125)


def test_centered_clipping_starts_from_the_previous_release() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = RobustFedBuff(rule="centered-clip", buffer_size=4, staleness=Constant())
    for i, v in enumerate((1.0, 1.0, 1.0, 1.0)):
        strategy.add(model, contribution(v, worker=f"w{i}"))
    scalars, arrays = strategy.state()

    restored = RobustFedBuff(rule="centered-clip", buffer_size=4, staleness=Constant())
    restored.restore(scalars, {k: np.array(v) for k, v in arrays.items()})
    for i, v in enumerate((1.0, 1.0, 1.0, -100.0)):
        restored.add(model, contribution(v, worker=f"w{i}"))

    # center 1: distances 0, 0, 0, 202 -> tau 0: nothing moves it; the model steps by 1 again
    np.testing.assert_allclose(model["w"], 2.0, rtol=1e-6)


@pytest.mark.parametrize("rule", ["krum", "multi-krum", "centered-clip"])
def test_whole_vector_rules_ignore_a_minority_of_sign_flippers(rule: str) -> None:
    rng = np.random.default_rng(0)
    model = {"w": np.zeros(4, np.float32), "b": np.zeros(2, np.float32)}
    strategy = RobustFedBuff(rule=rule, buffer_size=8, staleness=Constant())  # type: ignore[arg-type]
    honest = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    for i in range(8):
        vector = honest + rng.normal(0, 0.1, 6) if i >= 2 else -3.0 * honest
        strategy.add(
            model,
            Contribution(f"u{i}", f"w{i}", 0, 1, {"w": vector[:4], "b": vector[4:]}),
        )

    np.testing.assert_allclose(model["w"], 1.0, atol=0.2)
    np.testing.assert_allclose(model["b"], 1.0, atol=0.2)


def test_krum_refuses_a_buffer_too_small_for_its_byzantine_count() -> None:
    with pytest.raises(ValueError, match="2f"):
        RobustFedBuff(rule="krum", buffer_size=4, byzantine=1)


def test_a_fast_worker_gets_the_influence_of_a_typical_one() -> None:
    shares = ArrivalShare(window=100)
    factors: dict[str, float] = {}

    for _ in range(10):  # per round: 3 from the fast worker, 1 from each of three others
        for worker in ("fast", "fast", "fast", "a", "b", "c"):
            factors[worker] = shares.record(worker)

    # its last arrival: counts 30, 9, 9, 9 -> median 9 -> 9 / 30
    assert factors["fast"] == pytest.approx(0.3)
    # a's: 30, 10, 9, 9 -> median 9.5; b's and c's: median 10
    assert (factors["a"], factors["b"], factors["c"]) == pytest.approx((0.95, 1.0, 1.0))


def test_fedasync_with_fair_share_scales_alpha_by_the_factor() -> None:
    model = {"w": np.zeros(4, np.float32)}
    strategy = FedAsync(alpha=0.5, staleness=Constant(), update_kind="delta", fair_share=True)
    for worker in ("a", "b", "a"):  # counts a: 2, b: 1 -> median 1.5 -> factor 0.75
        outcome = strategy.add(model, contribution(1.0, worker=worker))

    assert outcome.weight == pytest.approx(0.5 * 0.75)
