"""The edges of a run: a restart after the end leaves the run's artefacts as they were."""

from __future__ import annotations

import json

import pytest

from harness.procs import Federation

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_a_restart_after_the_end_leaves_summary_and_final_model_as_they_were(
    federation: Federation,
) -> None:
    fed = federation
    agg = fed.aggregator("--max-versions", "5", num_partitions=1)
    fed.worker(0, num_partitions=1)
    assert agg.wait(timeout=90) == 0, fed.log("aggregator.log")[-3000:]
    summary = (fed.run_dir / "summary.json").read_text()
    model = (fed.run_dir / "final_model.npz").read_bytes()
    assert json.loads(summary)["accuracy"] is not None

    # As compose would after a SIGKILL just past the end: the same run, restarted.
    again = fed.aggregator("--max-versions", "5", num_partitions=1)

    assert again.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    assert (fed.run_dir / "summary.json").read_text() == summary
    assert (fed.run_dir / "final_model.npz").read_bytes() == model
