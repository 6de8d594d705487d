"""The aggregator core: validation verdicts, deduplication, version arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.aggregator import Aggregator, Applied, Duplicate
from aggregator.core.fedasync import FedAsync
from aggregator.core.fedbuff import FedBuff
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.validation import Rejected
from schemas.messages import ClientUpdate


def state(version: int = 5) -> AggregatorState:
    weights = {"W": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    return AggregatorState(run_id="r", version=version, weights=weights, applied=AppliedWindow(100))


def update(
    uid: str = "update-0001", base: int = 5, kind: str = "weights", **arrays: np.ndarray
) -> ClientUpdate:
    arrays = arrays or {"W": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}
    return ClientUpdate(
        update_id=uid,
        worker_id="w1",
        base_version=base,
        num_examples=5,
        update_kind=kind,  # type: ignore[arg-type]
        train_seconds=0.1,
        arrays=arrays,
    )


def test_a_valid_update_is_applied_and_makes_a_version() -> None:
    core = Aggregator(state(), FedAsync(alpha=0.5), max_staleness=10)

    outcome = core.handle(update(base=3))

    assert isinstance(outcome, Applied)
    assert outcome.staleness == 2 and outcome.version == 6 and core.state.version == 6
    assert core.state.weights["W"][0, 0] > 0


def test_a_redelivered_update_is_a_duplicate_and_changes_nothing() -> None:
    core = Aggregator(state(), FedAsync(alpha=0.5), max_staleness=10)
    core.handle(update())
    before = core.state.weights["W"].copy()

    outcome = core.handle(update())

    assert isinstance(outcome, Duplicate)
    assert core.state.version == 6 and core.state.counters.duplicates == 1
    np.testing.assert_array_equal(core.state.weights["W"], before)


@pytest.mark.parametrize(
    ("upd", "reason"),
    [
        (update(base=6), "future-version"),
        (update(base=0), "too-stale"),
        (update(kind="delta"), "wrong-update-kind"),
        (update(W=np.ones((3, 2), np.float32), b=np.ones(3, np.float32)), "shape-mismatch"),
        (update(W=np.ones((2, 3), np.float64), b=np.ones(3, np.float32)), "dtype-mismatch"),
        (update(W=np.ones((2, 3), np.float32)), "array-names"),
        (update(W=np.full((2, 3), np.nan, np.float32), b=np.ones(3, np.float32)), "non-finite"),
        (update(W=np.full((2, 3), np.inf, np.float32), b=np.ones(3, np.float32)), "non-finite"),
    ],
)
def test_invalid_updates_are_rejected_with_a_reason_and_leave_the_model_alone(
    upd: ClientUpdate, reason: str
) -> None:
    core = Aggregator(state(), FedAsync(alpha=0.5), max_staleness=4)

    outcome = core.handle(upd)

    assert isinstance(outcome, Rejected) and outcome.reason == reason
    assert core.state.version == 5 and core.state.counters.rejected[reason] == 1
    assert not core.state.weights["W"].any()
    assert upd.update_id not in core.state.applied


def test_fedbuff_versions_advance_once_per_buffer() -> None:
    core = Aggregator(state(version=0), FedBuff(buffer_size=2), max_staleness=None)

    first = core.handle(update("update-0001", base=0, kind="delta"))
    second = core.handle(update("update-0002", base=0, kind="delta"))

    assert isinstance(first, Applied) and not first.stepped and first.version == 0
    assert isinstance(second, Applied) and second.stepped and second.version == 1


def test_the_applied_window_forgets_the_oldest_ids() -> None:
    window = AppliedWindow(2, ["a", "b"], bases=[3, 4])
    window.add("c", 5)
    assert "a" not in window and "b" in window and "c" in window and len(window) == 2
    assert window.floor == 3
