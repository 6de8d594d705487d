"""``fedmq report``: figures and a summary from a run directory's logs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fedmq.cli import main
from fedmq.rundata import load_run
from runtime.eventlog import EventLog

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(run_dir: Path, *, versions: int = 30, seed: int = 0) -> None:
    rng = random.Random(seed)
    metrics, audit = EventLog(run_dir / "metrics.jsonl"), EventLog(run_dir / "audit.jsonl")
    for v in range(1, versions + 1):
        worker = f"w{v % 3}"
        audit.write(
            "applied",
            update_id=f"u{v:08d}",
            worker_id=worker,
            base_version=v - 1 - v % 3,
            staleness=v % 3,
            version=v,
        )
        if v % 5 == 0:
            metrics.write(
                "eval", version=v, elapsed=v * 0.1, loss=1.0 / v, accuracy=min(0.99, 0.5 + v / 60)
            )
        metrics.write("progress", version=v, elapsed=v * 0.1, updates_per_s=10 + rng.random())
    audit.write("rejected", reason="non-finite", detail="NaN")
    metrics.close()
    audit.close()
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "run_id": "abc",
                "version": versions,
                "stopped_because": "reached 30 versions",
                "accuracy": 0.99,
            }
        )
    )


def test_a_run_directory_is_read_into_evaluations_and_updates(tmp_path: Path) -> None:
    write_run(tmp_path)

    data = load_run(tmp_path)

    assert len(data.evals) == 6 and len(data.applied) == 30
    assert data.updates_per_worker() == {"w0": 10, "w1": 10, "w2": 10}
    assert data.staleness_counts() == {0: 10, 1: 10, 2: 10}
    assert data.rejected == {"non-finite": 1}


def test_report_writes_pngs_and_a_markdown_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path)

    code = main(["report", str(tmp_path), "--out", str(tmp_path / "out")])

    out = tmp_path / "out"
    assert code == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "accuracy_loss_vs_time.png",
        "accuracy_loss_vs_version.png",
        "overview.png",
        "staleness_histogram.png",
        "updates_per_worker.png",
    ]
    assert all((out / p).read_bytes()[:8] == PNG_MAGIC for p in pngs)
    summary = (out / "summary.md").read_text()
    assert "| test accuracy | 0.9900 |" in summary and "| updates applied | 30 |" in summary
    assert "| updates rejected | 1 (non-finite 1) |" in summary and "| w1 | 10 | 1.00 |" in summary
    assert "![overview](overview.png)" in summary
    assert str(out / "summary.md") in capsys.readouterr().out


def test_a_directory_without_logs_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", str(tmp_path)])

    err = capsys.readouterr().err.strip()
    assert code == 2 and "not a fedmq run directory" in err and "\n" not in err
