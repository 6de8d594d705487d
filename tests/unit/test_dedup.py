"""De-duplication is correct by construction: a retried update is a duplicate or too stale, never
applied twice, however many other updates arrived in between.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aggregator.core.aggregator import Aggregator, Applied, Duplicate
from aggregator.core.fedbuff import FedBuff
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.validation import Rejected
from aggregator.settings import AggregatorSettings
from aggregator.shell.checkpoint import save_checkpoint
from aggregator.shell.store import StateStore
from schemas.messages import ClientUpdate

WEIGHTS = {"w": np.zeros(2, np.float32)}


def delta(uid: str, base: int) -> ClientUpdate:
    return ClientUpdate(
        update_id=uid,
        worker_id="w1",
        base_version=base,
        num_examples=1,
        update_kind="delta",
        train_seconds=0.0,
        arrays={"w": np.full(2, 1e-6, np.float32)},
    )


def fedbuff_core(window: int, *, buffer_size: int, max_staleness: int) -> Aggregator:
    state = AggregatorState(
        "r", 0, {k: v.copy() for k, v in WEIGHTS.items()}, AppliedWindow(window)
    )
    return Aggregator(state, FedBuff(buffer_size=buffer_size), max_staleness=max_staleness)


def fill(core: Aggregator, count: int, prefix: str) -> None:
    for i in range(count):
        outcome = core.handle(delta(f"{prefix}-{i:08d}", core.state.version))
        assert isinstance(outcome, Applied)


def test_the_issues_retry_after_twenty_thousand_others_is_never_applied_twice() -> None:
    """Buffer 300, staleness bound 100, window 20,000: the update (base 66) is applied, 20,000
    others follow, then the same update_id is retried while still within the staleness bound."""
    core = fedbuff_core(20_000, buffer_size=300, max_staleness=100)
    fill(core, 66 * 300, "before")
    assert core.state.version == 66
    retried = delta("the-retried-update", 66)
    assert isinstance(core.handle(retried), Applied)
    fill(core, 20_000, "other")
    assert core.state.version - 66 <= 100  # still within the staleness bound

    outcome = core.handle(retried)

    assert isinstance(outcome, Duplicate) or (
        isinstance(outcome, Rejected) and outcome.reason == "too-stale"
    ), outcome


def test_a_window_holding_every_id_within_the_staleness_bound_recognises_the_retry() -> None:
    core = fedbuff_core(30_300, buffer_size=300, max_staleness=100)
    fill(core, 66 * 300, "before")
    retried = delta("the-retried-update", 66)
    core.handle(retried)
    fill(core, 20_000, "other")

    assert isinstance(core.handle(retried), Duplicate)


def test_ids_below_the_staleness_bound_make_room_first() -> None:
    window = AppliedWindow(2)
    window.add("old", 0)
    window.add("new", 10)
    window.add("newer", 10)
    assert "old" not in window and {"new", "newer"} <= set(window.ids())
    assert window.floor == 0  # an update based on version 0 is now refused, not re-applied


def test_an_update_at_or_below_the_floor_is_too_stale_even_within_the_bound() -> None:
    core = fedbuff_core(1, buffer_size=1, max_staleness=None)  # type: ignore[arg-type]
    core.handle(delta("first-update", 0))
    core.handle(delta("second-update", 1))  # evicts the first: the floor rises to 0

    outcome = core.handle(delta("first-update", 0))

    assert isinstance(outcome, Rejected) and outcome.reason == "too-stale"
    assert "floor" in outcome.detail


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_window_needs_room(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        AppliedWindow(capacity)


def saved_window(state_dir: Path, window: AppliedWindow) -> None:
    state = AggregatorState("r", 50, {k: v.copy() for k, v in WEIGHTS.items()}, window)
    save_checkpoint(state_dir, state, ({}, {}))


def test_a_restart_keeps_the_checkpoints_promise_and_the_new_window_size(tmp_path: Path) -> None:
    window = AppliedWindow(4, ["u1", "u2", "u3", "u4", "u5"], bases=[10, 11, 12, 13, 14])
    saved_window(tmp_path, window)  # u1 made room: the floor is 10

    state = StateStore(tmp_path, enabled=True, applied_window=8).restore(FedBuff(), dict)

    assert state.applied.capacity == 8  # the new flag is obeyed, not silently overridden
    assert state.applied.ids() == ["u2", "u3", "u4", "u5"] and state.applied.floor == 10
    assert state.applied.bases() == [11, 12, 13, 14]


def test_a_restart_with_a_window_smaller_than_the_checkpoints_promise_is_refused(
    tmp_path: Path,
) -> None:
    saved_window(tmp_path, AppliedWindow(4, ["u1", "u2", "u3"], bases=[10, 11, 12]))

    with pytest.raises(ValueError, match="--applied-window 2 refused"):
        StateStore(tmp_path, enabled=True, applied_window=2).restore(FedBuff(), dict)


def test_settings_tie_the_window_to_the_staleness_bound() -> None:
    with pytest.raises(ValueError, match=r"at least 30300 \(\(max_staleness \+ 1\) x buffer_size"):
        AggregatorSettings(strategy="fedbuff", buffer_size=300, max_staleness=100)
    with pytest.raises(ValueError, match=r"at least 101 \(max_staleness \+ 1\)"):
        AggregatorSettings(strategy="fedasync", max_staleness=100, applied_window=100)
    assert AggregatorSettings(strategy="fedbuff", buffer_size=300, applied_window=30_300)
    assert AggregatorSettings(strategy="fedasync", max_staleness=100, applied_window=101)
    # A run that stops at 300 versions cannot apply more than 301 versions' worth of updates.
    assert AggregatorSettings(max_staleness=1_000_000, max_versions=300, applied_window=301)
    with pytest.raises(ValueError, match=r"at least 301 \(max_versions \+ 1\)"):
        AggregatorSettings(max_staleness=1_000_000, max_versions=300, applied_window=300)
