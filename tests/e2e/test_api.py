"""fedmq.api: a federation started from Python returns its summary; the examples run as shipped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.errors import NotFound
from broker.names import Names
from broker.settings import BrokerSettings
from fedmq.api import AggregatorSettings, Federation, TrainerContext, run
from schemas.messages import TrainConfig
from training.trainer import EvalResult, FitResult
from training.weights import Weights

if TYPE_CHECKING:
    from harness.secure_node import SecureNode

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
#: Needs the management API and an administrator: run on the private secure node, below.
STRICT_EXAMPLE = ROOT / "examples" / "strict_identity.py"
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p != STRICT_EXAMPLE)


class Mean:
    """Learns the mean of its partition's numbers: a model whose progress is known exactly."""

    def __init__(self, context: TrainerContext) -> None:
        self.target = float(context.partition + 1)  # workers 0..2 hold 1, 2, 3: the mean is 2

    def initial_weights(self) -> Weights:
        return {"m": np.zeros(1)}

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        return FitResult({"m": np.full(1, self.target)}, num_examples=1)

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return EvalResult(loss=float((weights["m"][0] - 2.0) ** 2), num_examples=1)


def settings(namespace: str, amqp_url: str, tmp_path: Path, **extra: object) -> AggregatorSettings:
    return AggregatorSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        num_partitions=3,
        run_dir=str(tmp_path / "run"),
        state_dir=str(tmp_path / "state"),
        **extra,  # type: ignore[arg-type]
    )


def test_run_returns_the_aggregator_summary_and_each_workers_stats(
    namespace: str, amqp_url: str, tmp_path: Path
) -> None:
    config = settings(namespace, amqp_url, tmp_path, strategy="fedasync", max_versions=30)

    result = run(config, Mean, workers=3)

    summary = result.summary
    assert summary.stopped_because == "reached 30 versions" and summary.version >= 30
    assert summary.loss is not None and summary.loss < 0.5  # from 4.0 at the zero model
    assert set(result.workers) == {f"{namespace}-worker-{i}" for i in range(3)}
    assert all(w.stopped_because == "final model received" for w in result.workers.values())
    confirmed = sum(w.updates_confirmed for w in result.workers.values())
    assert confirmed >= summary.applied >= 30


def test_a_failing_trainer_is_raised_in_the_caller_and_stops_the_workers(
    namespace: str, amqp_url: str, tmp_path: Path
) -> None:
    def factory(context: TrainerContext) -> Mean:
        if context.role == "aggregator":
            raise RuntimeError("no test data here")
        return Mean(context)

    federation = Federation(
        settings(namespace, amqp_url, tmp_path, max_versions=5), factory, workers=3
    )
    started = time.monotonic()

    with pytest.raises(RuntimeError, match="no test data here"):
        federation.run()

    assert time.monotonic() - started < 30


def test_workers_must_fit_the_partitions(namespace: str, amqp_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_partitions"):
        Federation(settings(namespace, amqp_url, tmp_path), Mean, workers=4)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_example_runs_and_cleans_up(example: Path, namespace: str, amqp_url: str) -> None:
    env = {**os.environ, "AMQP_URL": amqp_url, "FEDMQ_EXAMPLE_NAMESPACE": namespace}

    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=180, env=env
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped because: reached" in result.stdout, result.stdout
    with AmqpSession(BrokerSettings(amqp_url=amqp_url, namespace=namespace)) as session:
        with pytest.raises(NotFound):  # cleanup=True deleted the namespace
            session.queue_counts(Names(namespace).results_queue)


def test_the_strict_identity_example_provisions_trains_and_cleans_up(
    secure_node: SecureNode,
) -> None:
    env = {
        **os.environ,
        "FEDMQ_MANAGEMENT_URL": secure_node.management_url,
        "FEDMQ_MANAGEMENT_USER": "guest",
        "FEDMQ_MANAGEMENT_PASSWORD": "guest",
        "FEDMQ_EXAMPLE_AMQP_ADDRESS": f"127.0.0.1:{secure_node.node.port}",
    }

    result = subprocess.run(
        [sys.executable, str(STRICT_EXAMPLE)], capture_output=True, text=True, timeout=180, env=env
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped because: reached 30 versions" in result.stdout, result.stdout
    assert "refused 0\n" in result.stdout, result.stdout  # after-final is not a refusal
