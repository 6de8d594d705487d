"""The large-model benchmark's pure parts: the checkpoint-cost measurement, the limits, the
rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.shell.checkpoint import CHECKPOINT_NAME, load_checkpoint
from bench.checkpoint_cost import checkpoint_cost, checkpoint_write
from bench.ingest import rss_limit
from bench.large import Case, checkpoint_row, e2e_rows, rejected_text
from bench.large_e2e import EndToEnd, wire_limit
from bench.procs import Usage


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


def test_end_to_end_rows_compare_with_the_wire_and_with_ingest() -> None:
    # Prepare: 10 versions in 20 s of a 100 MB model; 1 GB/s loopback carries 2.5 versions/s
    usage = Usage(0, 30.0, 10.0, 300_000_000)
    result = EndToEnd(10, 20.0, 10, {}, usage, (usage, usage), 100_000_000)

    # Execute
    rows = list(e2e_rows(Case(25_000_000, 1, 10, 60.0), result, 1e9, ingest=1.0))

    # Assert
    assert rows[0].ratio == pytest.approx(0.5 / 2.5)
    assert rows[0].note.startswith("0.50x the aggregator's chunked ingest alone")
    assert rows[1].met is True and rows[2].measured == "300 MB"
