"""End to end with differential privacy: the budget stops training; DP-SGD still learns digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aggregator.shell.checkpoint import load_checkpoint
from harness.procs import Federation, wait_for
from privacy.accountant import GaussianEvent, Ledger, epsilon
from privacy.spending import load_ledger

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

DELTA = 1e-5


def test_exhausting_the_budget_stops_training_and_leaves_the_model_and_spent_epsilon_on_disk(
    federation: Federation,
) -> None:
    fed = federation
    # z = 2, K = 2 of 4 workers: the budget allows each worker 6 releases and not 7.
    target = epsilon(Ledger().add(GaussianEvent(2.0), 6), DELTA) + 1e-6
    flags = [
        "--strategy",
        "fedbuff",
        "--buffer-size",
        "2",
        "--dp",
        "central",
        "--dp-clip",
        "0.5",
        "--dp-noise-multiplier",
        "2",
        "--target-epsilon",
        repr(target),
        "--max-seconds",
        "120",
        "--dp-seed",
        "1",
    ]
    workers = [fed.worker(i) for i in range(4)]
    # The run takes about a second: let every worker attach first so that all of them see it end.
    wait_for(
        lambda: all(
            any(e["event"] == "attached" for e in fed.worker_events(f"w{i}")) for i in range(4)
        ),
        60,
        "four workers",
    )
    agg = fed.aggregator(*flags)

    assert agg.wait(timeout=150) == 0, fed.log("aggregator.log")[-3000:]

    summary = fed.summary()
    assert summary is not None and summary["stopped_because"].startswith("privacy budget spent"), (
        summary
    )
    privacy = summary["privacy"]
    assert privacy["budget_spent"] and 0 < privacy["epsilon"] <= target
    assert privacy["max_participations"] == 6
    assert (fed.run_dir / "final_model.npz").exists()
    state, scalars, _ = load_checkpoint(fed.run_dir / "state")  # type: ignore[misc]
    assert state.finished and scalars["dp"]["epsilon_spent"] == pytest.approx(privacy["epsilon"])
    published = [e for e in fed.audit() if e["event"] == "published"]
    assert (
        published[-1]["final"]
        and published[-1]["version"] == summary["version"] == privacy["releases"]
    )
    for w in workers:
        assert w.wait(timeout=30) == 0  # they got the final model and stopped

    # A restart reads the spending back from the checkpoint instead of starting again at zero.
    again = fed.aggregator(*flags)
    assert again.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    assert fed.summary()["privacy"]["epsilon"] == pytest.approx(privacy["epsilon"])  # type: ignore[index]


def test_dpsgd_workers_learn_digits_to_75_percent_at_epsilon_below_6_5(
    federation: Federation,
) -> None:
    fed = federation
    fits = 25
    agg = fed.aggregator(
        "--strategy",
        "fedbuff",
        "--buffer-size",
        "2",
        "--no-sample-weighting",
        "--batch-size",
        "64",
        "--learning-rate",
        "1.0",
        "--max-versions",
        str(4 * fits // 2),
        "--max-staleness",
        "1000",
    )
    ledgers = [fed.run_dir / f"w{i}.ledger.json" for i in range(4)]
    for i in range(4):
        fed.worker(
            i,
            "--dpsgd",
            "--dpsgd-clip",
            "1",
            "--dpsgd-noise-multiplier",
            "2",
            "--dpsgd-ledger",
            str(ledgers[i]),
            "--max-updates",
            str(fits),
            "--dpsgd-seed",
            str(i),
        )

    assert agg.wait(timeout=240) == 0, fed.log("aggregator.log")[-3000:]

    summary = fed.summary()
    assert summary is not None and summary["accuracy"] >= 0.75, summary
    spent = wait_for(
        lambda: [json.loads(p.read_text()) for p in ledgers if p.exists()],
        30,
        "the workers' ledgers",
    )
    assert len(spent) == 4
    for path, record in zip(ledgers, spent, strict=False):
        ledger = load_ledger(path)
        assert record["epsilon"] == pytest.approx(
            epsilon(ledger, DELTA)
        )  # what the worker reported is the ledger's epsilon
        assert 0 < record["epsilon"] < 6.5
    assert np.isfinite(summary["loss"])
