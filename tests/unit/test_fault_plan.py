"""The fault-injection plan: five aggregator kills, the other faults only while an unarmed
aggregator runs.
"""

from __future__ import annotations

import pytest

from harness.faults import AGGREGATOR_KILLS, make_plan, next_failpoint

WORKERS = ["w0", "w1", "w2", "w3"]


@pytest.mark.parametrize("seed", range(20))
def test_every_plan_has_each_fault_once_and_arms_failpoints_in_order(seed: int) -> None:
    plan = make_plan(seed, WORKERS)

    assert sorted(f.kind for f in plan if f.kills_aggregator) == sorted(AGGREGATOR_KILLS)
    assert sorted(f.kind for f in plan if not f.kills_aggregator) == [
        "kill-worker",
        "restart-broker",
    ]
    for done, fault in enumerate(plan):
        if not fault.kills_aggregator:
            assert next_failpoint(plan, done) is None  # the running aggregator is unarmed
    assert next(f.worker for f in plan if f.kind == "kill-worker") in WORKERS


def test_the_same_seed_gives_the_same_plan() -> None:
    assert make_plan(3, WORKERS) == make_plan(3, WORKERS)
    assert make_plan(3, WORKERS) != make_plan(4, WORKERS)
