"""The large-model benchmark's pure parts: the checkpoint-cost measurement, the limits, the
rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.shell.checkpoint import CHECKPOINT_NAME, load_checkpoint
from bench.checkpoint_cost import checkpoint_cost, checkpoint_write
from bench.large import Case, checkpoint_row, rejected_text, rss_limit
from bench.large_e2e import wire_limit


def test_checkpoint_cost_compares_writes_of_the_same_bytes(tmp_path: Path) -> None:
    # Prepare / Execute
    cost = checkpoint_cost(tmp_path / "ckpt", 1000, repeat=2)

    # Assert
    assert cost.plain.nbytes == cost.checkpoint.nbytes
    assert cost.checkpoint.nbytes > 1000 * 4
    assert cost.checkpoint.seconds > 0 and cost.plain.seconds > 0
    assert cost.ratio == pytest.approx(cost.checkpoint.seconds / cost.plain.seconds)


def test_checkpoint_cost_leaves_no_files(tmp_path: Path) -> None:
    # Execute
    checkpoint_cost(tmp_path, 100, repeat=1)

    # Assert
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_write_is_a_real_checkpoint_of_the_model_size(tmp_path: Path) -> None:
    # Execute
    cost = checkpoint_write(tmp_path, 250)

    # Assert
    assert (tmp_path / CHECKPOINT_NAME).stat().st_size == cost.nbytes
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded[0].weights["w"].shape == (250,)


def test_wire_limit_counts_four_model_crossings_per_version() -> None:
    # 1 GB/s over 4 crossings of a 100 MB body: 2.5 versions/s at most
    assert wire_limit(1e9, 100_000_000) == pytest.approx(2.5)


def test_rss_limit_is_twice_the_model_plus_150_mb() -> None:
    assert rss_limit(100_000_000) == pytest.approx(350e6)


def test_case_label_names_parameters_and_bytes() -> None:
    assert Case(11_000_000, 16, 24, 150.0).label == "11M params (44 MB)"


def test_checkpoint_row_reports_the_time_ratio(tmp_path: Path) -> None:
    # Prepare
    cost = checkpoint_cost(tmp_path, 1000, repeat=1)

    # Execute
    row = checkpoint_row(Case(1000, 1, 1, 1.0), cost)

    # Assert
    assert row.ratio == pytest.approx(cost.ratio)
    assert "plain write + fsync" in row.baseline


def test_rejected_text_lists_reasons_in_order() -> None:
    assert rejected_text({"stale": 10, "late": 2}) == "12 rejected (late 2, stale 10)"
    assert rejected_text({}) == "0 rejected"
