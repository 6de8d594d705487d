"""Reputation: scores against the other workers, running reputation, exclusion after evidence."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.reputation import (
    Reputation,
    ReputationConfig,
    agreement_scores,
    moved,
    still_excluded,
)


def test_a_vote_is_scored_against_the_mean_of_the_others_relative_to_the_median() -> None:
    votes = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    # raw: (1,0) vs mean((1,0),(-1,0)) = 0 -> 0; the same for row 1; (-1,0) vs (1,0) -> -1
    # median of the raw scores is 0

    scores = agreement_scores(votes)

    np.testing.assert_allclose(scores, [0.0, 0.0, -1.0])


def test_an_oversized_vote_scores_minus_one_whatever_its_direction() -> None:
    votes = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 0.0]])  # norms 1, 1, 10: 10 > 4 x median
    # clipped: (1,0), (0,1), (1,0). raw: cos((1,0), (0.5,0.5)) = 0.7071; cos((0,1), (1,0)) = 0;
    # the oversized row -1. median 0.

    scores = agreement_scores(votes)

    np.testing.assert_allclose(scores, [np.sqrt(0.5), 0.0, -1.0])


def test_a_lone_vote_has_nobody_to_disagree_with() -> None:
    np.testing.assert_array_equal(agreement_scores(np.array([[3.0, 4.0]])), [0.0])


def test_reputation_is_a_running_mean_then_a_moving_average() -> None:
    assert moved(None, 1, 0.5, 0.1) == 0.5
    assert moved(0.5, 2, 0.0, 0.1) == pytest.approx(0.25)  # weight 1/2 > 0.1
    assert moved(1.0, 20, 0.0, 0.1) == pytest.approx(0.9)  # weight 0.1 from the 10th score on


def test_exclusion_is_sticky_by_default_and_hysteretic_with_a_readmission_level() -> None:
    sticky = ReputationConfig(threshold=-0.25)
    hysteretic = ReputationConfig(threshold=-0.25, readmit=0.0)

    assert still_excluded(False, -0.3, sticky)
    assert not still_excluded(False, -0.2, sticky)
    assert still_excluded(True, 0.5, sticky)
    assert still_excluded(True, -0.1, hysteretic)
    assert not still_excluded(True, 0.0, hysteretic)


def test_a_config_with_readmission_below_exclusion_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold <= readmit"):
        ReputationConfig(threshold=0.0, readmit=-0.5)


def test_a_worker_is_excluded_only_after_enough_evidence() -> None:
    reputation = Reputation(ReputationConfig(evidence=2, threshold=-0.25))
    names = ["a", "b", "c", "d"]
    votes = np.array([[1.0, 0.1], [1.0, -0.1], [1.0, 0.0], [-1.0, 0.0]])  # d opposes everyone

    first = reputation.observe(names, votes)
    excluded_after_one = set(reputation.excluded)
    reputation.observe(names, votes)

    assert first["d"] < -1.0  # raw -1, relative to a median near +0.99
    assert excluded_after_one == set()
    assert reputation.excluded == {"d"}


def test_reputation_state_round_trips_through_json_scalars() -> None:
    reputation = Reputation(ReputationConfig(evidence=1))
    votes = np.array([[1.0, 0.0], [1.0, 0.2], [1.0, -0.2], [-1.0, 0.0]])
    reputation.observe(["a", "b", "c", "d"], votes)
    restored = Reputation(ReputationConfig(evidence=1))

    restored.restore(reputation.state())

    assert restored.reputations == reputation.reputations
    assert restored.counts == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert restored.excluded == reputation.excluded == {"d"}


def test_fewer_than_a_third_of_the_workers_are_ever_excluded_lowest_first() -> None:
    reputation = Reputation(ReputationConfig(evidence=1, threshold=-0.25))
    names = ["a", "b", "c", "d", "e"]  # at most (5 - 1) // 3 = 1 excluded
    votes = np.array([[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [-1.0, 0.0], [0.0, -1.0]])
    # e is orthogonal to the others' mean (raw about -0.2 - 0.97 below the median), d opposes it

    reputation.observe(names, votes)

    assert reputation.reputations["e"] < -0.25 and reputation.reputations["d"] < -0.25
    assert reputation.excluded == {"d"}
