"""User-level DP around FedBuff and FedAsync: sensitivity, noise, participation, budget,
checkpoints.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.core.aggregator import Aggregator
from aggregator.core.fedasync import FedAsync
from aggregator.core.fedbuff import FedBuff
from aggregator.core.private import PrivacyConfig, PrivateStrategy, restore_strategy
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.strategy import Contribution, Strategy
from aggregator.core.validation import Rejected
from aggregator.shell.checkpoint import load_checkpoint, save_checkpoint
from privacy.accountant import GaussianEvent, Ledger, epsilon
from privacy.participation import Budget
from schemas.messages import ClientPrivacy, ClientUpdate
from training.weights import l2_norm

DIM = 6


def config(**overrides: object) -> PrivacyConfig:
    values: dict[str, object] = dict(
        mode="central", clip=1.0, noise_multiplier=1.0, budget=Budget(None, 1e-5)
    )
    values.update(overrides)
    return PrivacyConfig(**values)  # type: ignore[arg-type]


def fedbuff(k: int, *, seed: int = 0, **overrides: object) -> PrivateStrategy:
    inner = FedBuff(buffer_size=k, server_lr=1.0, sample_weighting=False)
    return PrivateStrategy(inner, config(**overrides), np.random.default_rng(seed), per_release=k)


def fedasync(*, seed: int = 0, **overrides: object) -> PrivateStrategy:
    inner = FedAsync(alpha=0.5, sample_weighting=False, update_kind="delta")
    return PrivateStrategy(inner, config(**overrides), np.random.default_rng(seed), per_release=1)


def contrib(
    worker: str, delta: np.ndarray, uid: str | None = None, staleness: int = 0
) -> Contribution:
    return Contribution(
        update_id=uid or f"{worker}-{id(delta)}",
        worker_id=worker,
        staleness=staleness,
        num_examples=1,
        arrays={"w": delta},
    )


def release(strategy: Strategy, deltas: list[np.ndarray], staleness: list[int]) -> np.ndarray:
    model = {"w": np.zeros(DIM, np.float64)}
    for i, (d, s) in enumerate(zip(deltas, staleness, strict=False)):
        strategy.add(model, contrib(f"w{i}", d, uid=f"u{i}", staleness=s))
    return model["w"]


vectors = st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=DIM, max_size=DIM).map(
    lambda v: np.array(v, np.float64)
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(vectors, min_size=3, max_size=3),
    st.integers(0, 2),
    st.lists(st.integers(0, 9), min_size=3, max_size=3),
    st.floats(0.01, 10),
)
def test_one_worker_moves_a_fedbuff_release_by_at_most_its_clip(
    deltas: list[np.ndarray], who: int, staleness: list[int], clip: float
) -> None:
    neighbour = [np.zeros(DIM) if i == who else d for i, d in enumerate(deltas)]

    # Same seed, so both releases get the same noise draw: the difference is the worker's effect
    # alone.
    with_worker = release(fedbuff(3, seed=5, clip=clip), deltas, staleness)
    without_worker = release(fedbuff(3, seed=5, clip=clip), neighbour, staleness)

    scale = 1.0 / 3  # server_lr / K
    assert np.linalg.norm(with_worker - without_worker) <= scale * clip * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(vectors, st.integers(0, 20), st.floats(0.01, 10))
def test_one_update_moves_a_fedasync_release_by_at_most_alpha_times_clip(
    delta: np.ndarray, staleness: int, clip: float
) -> None:
    with_worker = release(fedasync(seed=5, clip=clip), [delta], [staleness])
    without_worker = release(fedasync(seed=5, clip=clip), [np.zeros(DIM)], [staleness])

    assert np.linalg.norm(with_worker - without_worker) <= 0.5 * clip * (1 + 1e-9)


def test_release_noise_over_many_releases_has_the_configured_std() -> None:
    strategy = fedbuff(2, seed=11, clip=0.5, noise_multiplier=3.0)
    model = {"w": np.zeros(500, np.float64)}
    steps = []
    for r in range(400):
        before = model["w"].copy()
        for w in ("a", "b"):
            strategy.add(model, contrib(w, np.zeros(500), uid=f"{w}{r}"))
        steps.append(model["w"] - before)

    # Released noise on the model: server_lr / K * N(0, (z C)^2) = 0.5 * 3.0 * 0.5 = 0.75 per
    # coordinate.
    assert np.std(np.concatenate(steps)) == pytest.approx(0.75, rel=0.02)
    assert strategy.accountant.releases == 400


def test_a_second_update_from_a_worker_waits_for_the_next_release_and_a_third_is_refused() -> None:
    strategy = fedbuff(2, noise_multiplier=0.0)
    model = {"w": np.zeros(DIM)}
    one = np.ones(DIM) * 0.1

    strategy.add(model, contrib("a", one, "a1"))
    held = strategy.add(model, contrib("a", one * 2, "a2"))
    refusal = strategy.refuse("a")
    stepped = strategy.add(model, contrib("b", one * 3, "b1"))

    assert not held.stepped and stepped.stepped
    np.testing.assert_allclose(model["w"], (one + one * 3) / 2)  # a2 is not in this release
    assert isinstance(refusal, Rejected) and refusal.reason == "participation-limit"
    assert strategy.pending() == 1  # a2 went into the next buffer
    assert strategy.accountant.ledger("a").total() == 1


def test_the_budget_closes_the_strategy_before_a_release_could_exceed_it() -> None:
    target = epsilon(Ledger().add(GaussianEvent(2.0), 3), 1e-5) + 1e-6
    strategy = fedasync(noise_multiplier=2.0, budget=Budget(target, 1e-5))
    model = {"w": np.zeros(DIM)}

    for i in range(3):
        assert strategy.refuse("a") is None
        strategy.add(model, contrib("a", np.ones(DIM), f"u{i}"))

    assert strategy.closed() is not None
    assert strategy.accountant.epsilon() <= target
    refusal = strategy.refuse("b")
    assert isinstance(refusal, Rejected) and refusal.reason == "privacy-budget-spent"


def test_a_budget_smaller_than_one_release_closes_before_anything_is_released() -> None:
    strategy = fedasync(noise_multiplier=0.5, budget=Budget(0.1, 1e-5))

    assert strategy.closed() is not None and strategy.accountant.releases == 0


def test_the_core_rejects_updates_once_the_budget_is_spent() -> None:
    strategy = fedasync(
        noise_multiplier=2.0, budget=Budget(epsilon(Ledger().add(GaussianEvent(2.0)), 1e-5), 1e-5)
    )
    state = AggregatorState("run", 0, {"w": np.zeros(DIM, np.float32)}, AppliedWindow(100))
    core = Aggregator(state, strategy, max_staleness=None)

    def update(uid: str) -> ClientUpdate:
        return ClientUpdate(
            update_id=uid,
            worker_id="a",
            base_version=state.version,
            num_examples=1,
            update_kind="delta",
            train_seconds=0.0,
            arrays={"w": np.ones(DIM, np.float32)},
        )

    core.handle(update("update-0001"))
    outcome = core.handle(update("update-0002"))

    assert state.version == 1
    assert isinstance(outcome, Rejected) and outcome.reason == "privacy-budget-spent"


def test_spending_held_updates_and_noise_stream_survive_a_checkpoint(tmp_path: object) -> None:
    original = fedbuff(3, seed=2)
    model = {"w": np.zeros(DIM, np.float32)}
    for uid, w in [("u1", "a"), ("u2", "b"), ("u3", "c"), ("u4", "a"), ("u5", "a")]:
        original.add(model, contrib(w, np.full(DIM, 0.2, np.float32), uid))
    state = AggregatorState("run", 1, model, AppliedWindow(10))
    save_checkpoint(tmp_path, state, original.state())  # type: ignore[arg-type]

    loaded_state, scalars, arrays = load_checkpoint(tmp_path)  # type: ignore[misc,arg-type]
    restored = fedbuff(3, seed=999)
    restored.restore(scalars, arrays)

    assert restored.accountant.epsilon() == original.accountant.epsilon() > 0
    assert (
        restored.pending() == original.pending() == 2
    )  # a (readmitted) in the buffer, a's third held
    assert scalars["dp"]["epsilon_spent"] == pytest.approx(original.accountant.epsilon())
    for strategy in (original, restored):
        for uid, w in [("u6", "b"), ("u7", "c")]:
            strategy.add(
                loaded_state.weights if strategy is restored else model,
                contrib(w, np.full(DIM, 0.2, np.float32), uid),
            )
    np.testing.assert_array_equal(loaded_state.weights["w"], model["w"])


def test_a_strategy_without_a_linear_release_cannot_be_made_private() -> None:
    with pytest.raises(ValueError, match="cannot be made private"):
        PrivateStrategy(FedAsync(alpha=0.5), config(), np.random.default_rng(0), per_release=1)
    with pytest.raises(ValueError, match="cannot be made private"):
        PrivateStrategy(
            FedBuff(buffer_size=2, sample_weighting=True),
            config(),
            np.random.default_rng(0),
            per_release=2,
        )


def test_local_mode_adds_no_noise_and_charges_every_applied_update() -> None:
    strategy = fedasync(mode="local", noise_multiplier=2.0)
    model = {"w": np.zeros(DIM)}

    strategy.add(model, contrib("a", np.full(DIM, 3.0), "u1"))
    strategy.add(model, contrib("a", np.full(DIM, 3.0), "u2"))

    np.testing.assert_allclose(
        model["w"], 3.0
    )  # 0.5 * 3 twice, unclipped: workers clipped and noised already
    assert strategy.accountant.ledger("a").total() == 2
    assert strategy.client_privacy() == ClientPrivacy(clip=1.0, noise_multiplier=2.0)


def test_adaptive_clipping_moves_the_clip_toward_the_update_norms() -> None:
    strategy = fedbuff(4, noise_multiplier=0.0, adaptive=True, clip=10.0, count_stddev=1e-9)
    model = {"w": np.zeros(DIM)}

    for r in range(20):
        for w in "abcd":
            strategy.add(model, contrib(w, np.full(DIM, 0.1), f"{w}{r}"))

    # every update (norm ~0.245) fits inside C, so C shrinks by exp(-0.2 * 0.5) per release
    assert strategy.clip == pytest.approx(10.0 * np.exp(-0.1 * 20), rel=1e-6)
    assert l2_norm({"w": np.full(DIM, 0.1)}) < strategy.clip


def test_a_run_cannot_switch_privacy_on_or_off_across_a_restart() -> None:
    private_scalars, private_arrays = fedbuff(2).state()
    plain_scalars, plain_arrays = FedBuff(buffer_size=2).state()

    with pytest.raises(ValueError, match="without --dp and cannot continue with it"):
        restore_strategy(fedbuff(2), plain_scalars, plain_arrays)
    with pytest.raises(ValueError, match="with --dp and cannot continue without it"):
        restore_strategy(FedBuff(buffer_size=2), private_scalars, private_arrays)
