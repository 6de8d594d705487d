"""Trajectory trust: one vote per worker, votes clipped to the median norm, trust by history."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.robust_fedbuff import RobustFedBuff
from aggregator.core.staleness import Constant
from aggregator.core.strategy import Contribution
from aggregator.core.trajectory import (
    TrajectoryTrust,
    clip_to_median,
    cosine,
    trusted,
    worker_votes,
)


def test_a_worker_with_two_rows_is_one_vote_their_mean() -> None:
    stack = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])

    names, votes = worker_votes(stack, ["fast", "fast", "slow"])

    assert names == ["fast", "slow"]
    np.testing.assert_allclose(votes, [[2.0, 0.0], [0.0, 2.0]])


def test_votes_are_clipped_to_the_median_norm() -> None:
    votes = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])  # norms 5, 1, 2 -> median 2

    np.testing.assert_allclose(clip_to_median(votes), [[1.2, 1.6], [0.0, 1.0], [0.0, 2.0]])


def test_trust_needs_a_positive_score_of_at_least_half_the_median() -> None:
    scores = {"a": 0.6, "b": 0.4, "c": 0.3, "d": 0.1, "e": -0.2}  # median 0.3 -> threshold 0.15

    assert trusted(scores) == {"a", "b", "c"}
    assert trusted({"a": -0.1, "b": -0.2, "c": -0.3}) == set()  # a negative median trusts nobody
    assert cosine(np.zeros(2), np.ones(2)) == 0.0


def test_the_first_release_takes_every_vote_then_an_opponent_is_left_out() -> None:
    trust = TrajectoryTrust()
    honest = [np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0])]
    opponent = np.array([-1.0, -1.0, 0.0])
    members = ["a", "b", "c", "x"]

    first = trust.combine(np.stack([*honest, opponent]), members)
    # norms 1, 1, 1.414, 1.414 -> median 1.207: c and x shrink to 1.207 / 1.414 = 0.854 per axis
    c = 1.2071 / np.sqrt(2.0)
    np.testing.assert_allclose(first, [(1 + c - c) / 4, (1 + c - c) / 4, 0.0], atol=1e-4)
    # histories 2 x votes, each judged against (0.25, 0.25, 0) - vote / 4 + 2 vote / 4:
    # a, b 0.894, c 1.0, x -1.0 -> median 0.894, threshold 0.447
    second = trust.combine(np.stack([*honest, opponent]), members)

    assert trust.last_trusted == {"a", "b", "c"}
    np.testing.assert_allclose(second, [(1 + c) / 3, (1 + c) / 3, 0.0], atol=1e-4)
    assert trust.scores()["x"] == pytest.approx(-1.0)


def test_nobody_trusted_makes_a_zero_release() -> None:
    trust = TrajectoryTrust()
    members = ["a", "b", "c", "d"]
    trust.combine(np.array([[1.0, 0.0]] * 4), members)  # trajectory (1, 0), each applied (0.25, 0)

    step = trust.combine(np.array([[-3.0, 0.0]] * 4), members)

    # histories (-2, 0); each judged against (1, 0) - (0.25, 0) + (-2, 0) / 4 = (0.25, 0): -1
    np.testing.assert_allclose(step, [0.0, 0.0])
    assert trust.last_trusted == set()
    assert trust.scores() == pytest.approx(dict.fromkeys(members, -1.0))


def test_a_worker_is_judged_as_if_it_had_always_had_an_equal_share() -> None:
    trust = TrajectoryTrust()
    # b was left out: the trajectory is a's vote alone
    trust.histories = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    trust.applied = {"a": np.array([1.0, 0.0])}
    trust.trajectory = np.array([1.0, 0.0])

    scores = trust.scores()

    # a: (1, 0) vs (1, 0) - (1, 0) + (1, 0) / 2 -> 1.0; b: (0, 1) vs (1, 0) + (0, 1) / 2 ->
    # 0.5 / sqrt(1.25) = 0.447, where the plain cosine with the trajectory would be 0 for good
    assert scores == pytest.approx({"a": 1.0, "b": 0.4472}, abs=1e-4)


def contribution(vector: np.ndarray, worker: str, i: int) -> Contribution:
    return Contribution(f"{worker}-{i}", worker, 0, 1, {"w": vector.astype(np.float32)})


def test_robust_fedbuff_trajectory_leaves_out_a_persistent_opponent_and_survives_restore() -> None:
    model = {"w": np.zeros(3, np.float32)}
    strategy = RobustFedBuff(rule="trajectory", buffer_size=4, staleness=Constant())
    honest = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [1.0, 1.0, 0.0]}
    votes = {**honest, "x": [-1.0, -1.0, 0.0]}
    for w, v in votes.items():
        strategy.add(model, contribution(np.array(v), w, 0))
    scalars, arrays = strategy.state()
    restored = RobustFedBuff(rule="trajectory", buffer_size=4, staleness=Constant())
    restored.restore(scalars, {k: np.array(v) for k, v in arrays.items()})
    for w, v in votes.items():
        restored.add(model, contribution(np.array(v), w, 1))

    # the second release is the same as TrajectoryTrust's above: x is left out
    c = 1.2071 / np.sqrt(2.0)
    np.testing.assert_allclose(model["w"], [0.25 + (1 + c) / 3] * 2 + [0.0], atol=1e-4)
    assert restored.trust.last_trusted == {"a", "b", "c"}
