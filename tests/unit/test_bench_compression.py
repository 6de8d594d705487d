"""The compression bench reports each mode as the mean over its seeds, the seeds in the note."""

from __future__ import annotations

import pytest

from bench.compression import ModeResult, mean_over_seeds, rows, seeds_note


def test_a_mode_over_seeds_is_the_mean_of_every_figure_and_keeps_each_accuracy() -> None:
    runs = [ModeResult("topk", 100.0, 10.0, 0.90), ModeResult("topk", 300.0, 30.0, 0.96)]
    merged = mean_over_seeds(runs)
    assert merged.mode == "topk"
    assert (merged.bytes_per_update, merged.updates_per_second) == (200.0, 20.0)
    assert merged.accuracy == pytest.approx(0.93)
    assert merged.per_seed == (0.90, 0.96)
    assert seeds_note(merged) == "mean of 2 seeds: 0.9000, 0.9600"


def test_the_floor_is_judged_on_the_mean_over_seeds() -> None:
    base = mean_over_seeds([ModeResult("none", 1000.0, 1.0, a) for a in (0.95, 0.93)])
    # 1.0 and 2.0 points lost on the two seeds (one of them at the floor): 1.5 on the mean.
    topk = mean_over_seeds([ModeResult("topk", 40.0, 1.0, a) for a in (0.94, 0.91)])
    accuracy = [r for r in rows("task", [base, topk], 0.01) if r.case.endswith("accuracy")]
    assert accuracy[1].measured == "0.9250 (+1.50 points lost)"
    assert accuracy[1].met is True
    assert accuracy[1].note == "mean of 2 seeds: 0.9400, 0.9100"
