"""The benchmark harness works (``python -m bench --quick``); its figures are not tested."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import Row
from bench.table import markdown

REPO = Path(__file__).resolve().parents[2]


def test_rows_render_as_a_markdown_table_with_the_verdict() -> None:
    rows = [
        Row("codec", "1M", "9 GB/s", "10 GB/s", 0.9, ">= 0.5x", True),
        Row("scale", "a|b", "1 upd/s"),
    ]

    table = markdown(rows).splitlines()

    assert table[0].startswith("| benchmark | case |") and len(table) == 4
    assert "| 0.90x | >= 0.5x | yes |" in table[2]
    assert "a/b" in table[3]


def quick_bench(only: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m bench --quick --only <only>``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", only, "--workdir", str(workdir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.broker
def test_quick_codec_and_ingest_benchmarks_print_their_rows(amqp_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "AMQP_URL": amqp_url}

    done = quick_bench("codec,ingest", tmp_path, env)

    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert sum("codec encode+decode" in r for r in rows) == 4
    assert sum("aggregator ingest" in r for r in rows) == 6  # fair, naive, no checkpoint
    assert sum("--no-checkpoint" in r for r in rows) == 2
    assert sum("memory: aggregator peak RSS" in r for r in rows) == 2


def test_an_unknown_benchmark_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nonesuch"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2 and "unknown benchmark" in done.stderr


@pytest.mark.broker
def test_quick_edges_benchmark_drains_the_updates_with_one_and_two_edges(tmp_path: Path) -> None:
    done = quick_bench("edges", tmp_path, dict(os.environ))  # a private node: no AMQP_URL

    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| scale-out edges")]
    assert [r.split(" | ")[1] for r in rows] == [
        "40 KB model, plain aggregator",
        "40 KB model, root + 1 edge",
        "40 KB model, root + 2 edges",
    ]
    assert "| 1.00x |" in rows[1]
