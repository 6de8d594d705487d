"""The scale-out bench's arithmetic: rates timed between commits, ratios to one edge and to the
plain aggregator, the broker's CPU read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.edges import Case, Measured, broker_cpu, median, per_update_ms, rows, window
from harness.rabbit_node import RabbitNode


def test_the_rate_leaves_out_the_first_commit_and_the_start_up_before_it() -> None:
    commits = [(10.0, 20), (12.0, 20), (14.0, 20)]

    rate, versions = window(commits)

    assert rate == pytest.approx(40 / 4.0)
    assert versions == pytest.approx(2 / 4.0)


def test_cpu_seconds_are_spread_over_the_updates_in_milliseconds() -> None:
    assert per_update_ms({"edges": 3.0, "root": 0.5}, 1000) == {"edges": 3.0, "root": 0.5}


def test_the_median_run_is_kept_whole_with_every_repeat_rate() -> None:
    runs = [Measured("1 edge", rate, 1.0, {"root": rate}, {}) for rate in (30.0, 10.0, 20.0, 40.0)]

    chosen = median(runs)

    assert chosen.rate == 20.0 and chosen.cores == {"root": 20.0}  # lower middle of four
    assert chosen.repeats == (30.0, 10.0, 20.0, 40.0)


def test_one_commit_times_no_rate() -> None:
    with pytest.raises(ValueError, match="two commits"):
        window([(1.0, 10)])


def test_rows_give_each_edge_count_as_a_ratio_to_one_edge_and_to_the_plain_aggregator() -> None:
    plain = Measured("plain aggregator", 100.0, 5.0, {"aggregator": 0.9}, {"aggregator": 2.0})
    runs = [
        Measured("1 edge", 50.0, 2.5, {"root": 0.5}, {"edges": 3.0}, (40,)),
        Measured("2 edges", 80.0, 4.0, {"root": 0.6}, {"edges": 3.5, "root": 1.25}, (30, 10)),
    ]

    table = list(rows(Case("40 KB", 10_000, 40, 20), plain, runs))

    assert [r.ratio for r in table] == [None, pytest.approx(1.0), pytest.approx(1.6)]
    assert table[2].note.startswith("0.80x the plain aggregator")
    assert "queued per edge [30, 10]" in table[2].note
    assert "CPU per update: edges 3.5 ms, root 1.2 ms" in table[2].note
    assert table[0].measured == "100.0 upd/s, 5.00 versions/s"


def test_the_broker_cpu_is_read_from_the_pid_the_node_wrote(tmp_path: Path) -> None:
    (tmp_path / "pid").write_text(f"{os.getpid()}\n")
    sum(i * i for i in range(200_000))  # this process has used some CPU by now

    used = broker_cpu(RabbitNode(base=tmp_path))

    assert 0 < used <= sum(os.times()[:2]) + 0.05
