"""The independent delivery check: judged from workers' confirmations, witnessed versions and the
final checkpoint, never from the aggregator's audit log alone.
"""

from __future__ import annotations

from harness.delivery import DeliveryEvidence, delivery_problems


def evidence(**overrides: object) -> DeliveryEvidence:
    fields: dict[str, object] = {
        "confirmed": ["a", "b", "c", "d"],
        "witnessed": [(0, "d0"), (1, "d1"), (1, "d1"), (2, "d2")],
        "applied_ids": ["a", "b"],
        "applied_count": 2,
        "window_capacity": 100,
        "final_version": 2,
        "queued": ["c"],
        "too_stale": ["d"],
    }
    fields.update(overrides)
    return DeliveryEvidence(**fields)  # type: ignore[arg-type]


def test_every_confirmed_update_accounted_for_and_one_model_per_version_passes() -> None:
    assert delivery_problems(evidence()) == []


def test_a_confirmed_update_nowhere_to_be_found_is_lost() -> None:
    problems = delivery_problems(evidence(queued=[]))

    assert problems == [
        "update c was confirmed to its worker but is neither applied, dead-lettered, queued "
        "nor rejected as too stale or after the end"
    ]


def test_more_applications_than_distinct_updates_is_a_double_application() -> None:
    assert delivery_problems(evidence(applied_count=3)) == ["3 applications of 2 distinct updates"]


def test_a_version_broadcast_with_two_models_or_going_back_is_caught() -> None:
    problems = delivery_problems(evidence(witnessed=[(0, "d0"), (1, "d1"), (1, "x1"), (0, "d0")]))

    assert problems == [
        "version 1 reached the workers with 2 different weights",
        "version 0 was broadcast after version 1",
    ]


def test_a_version_beyond_the_final_state_is_caught() -> None:
    assert delivery_problems(evidence(final_version=1)) == [
        "a version above the final state's 1 was broadcast"
    ]
