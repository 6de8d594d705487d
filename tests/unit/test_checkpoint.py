"""Checkpoints: atomic, complete, and refused when corrupt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from aggregator.core.fedbuff import FedBuff
from aggregator.core.state import AggregatorState, AppliedWindow, Counters
from aggregator.core.strategy import Contribution
from aggregator.shell.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    remove_temporaries,
    save_checkpoint,
)


def test_a_checkpoint_round_trips_the_whole_state(tmp_path: Path) -> None:
    weights = {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    counters = Counters(applied=7, duplicates=1, published=3)
    counters.rejected["non-finite"] = 2
    state = AggregatorState(
        "run1",
        42,
        weights,
        AppliedWindow(5, ["x", "y"]),
        counters,
        commit=9,
        elapsed=12.5,
        extra={"eps": 1.5},
    )
    strategy = FedBuff(buffer_size=3)
    scratch = {"W": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    strategy.add(scratch, Contribution("u", "w", staleness=0, num_examples=2, arrays=weights))

    save_checkpoint(tmp_path, state, strategy.state())
    loaded = load_checkpoint(tmp_path)

    assert loaded is not None
    restored, scalars, arrays = loaded
    assert (restored.run_id, restored.version, restored.commit, restored.elapsed) == (
        "run1",
        42,
        9,
        12.5,
    )
    assert restored.applied.ids() == ["x", "y"] and restored.applied.capacity == 5
    assert restored.counters.as_dict() == counters.as_dict()
    assert restored.extra == {"eps": 1.5}
    np.testing.assert_array_equal(restored.weights["W"], weights["W"])
    assert restored.weights["W"].flags.writeable
    assert scalars == {"count": 1, "mass": 2.0}
    np.testing.assert_array_equal(arrays["W"], 2 * weights["W"])


def test_no_checkpoint_means_none(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None


def test_a_corrupt_checkpoint_is_refused_not_ignored(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"\x92garbage")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


def test_saving_replaces_atomically_and_leaves_no_temp_file(tmp_path: Path) -> None:
    state = AggregatorState("r", 1, {"w": np.zeros(2)}, AppliedWindow(3))
    save_checkpoint(tmp_path, state, ({}, {}))
    state.version = 2
    save_checkpoint(tmp_path, state, ({}, {}))

    loaded = load_checkpoint(tmp_path)

    assert loaded is not None and loaded[0].version == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def test_each_save_writes_through_a_temporary_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = AggregatorState("run1", 1, {"b": np.ones(3, np.float32)}, AppliedWindow(5))
    renamed: list[str] = []
    replace = os.replace

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append(Path(src).name)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)

    save_checkpoint(tmp_path, state, ({}, {}))
    save_checkpoint(tmp_path, state, ({}, {}))

    assert len(set(renamed)) == 2 and str(os.getpid()) in renamed[0]


def test_temporaries_left_by_a_crashed_save_are_removed(tmp_path: Path) -> None:
    state = AggregatorState("run1", 1, {"b": np.ones(3, np.float32)}, AppliedWindow(5))
    save_checkpoint(tmp_path, state, ({}, {}))
    (tmp_path / f"{CHECKPOINT_NAME}.123.abcd.tmp").write_bytes(b"half a checkpoint")

    removed = remove_temporaries(tmp_path)

    assert removed == 1 and sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]
