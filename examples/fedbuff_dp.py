"""FedBuff with differential privacy, from Python.

The built-in trainer (logistic regression on scikit-learn's bundled digits, split across 4
workers with a label skew). Every worker trains with DP-SGD (record-level DP: per-example
clipping to C = 1, Gaussian noise z = 1.0, Poisson sampling), so each update it sends
protects every example it holds, and reports the epsilon it has spent; the aggregator
buffers K = 2 updates per FedBuff step. (User-level DP at the aggregator, ``dp="central"``,
needs far more than 4 workers to learn anything: see docs/privacy.md.)

    AMQP_URL=amqp://guest:guest@localhost:5672/%2F python examples/fedbuff_dp.py
"""

from __future__ import annotations

import os
import tempfile
import uuid

from fedmq.api import AggregatorSettings, Trainer, TrainerContext, run
from schemas.messages import TrainConfig
from tasks.builtin import make_trainer
from training.trainer import EvalResult, FitResult
from training.weights import Weights

#: The epsilon each worker's last update reported (its DP-SGD accountant's), by partition.
SPENT: dict[int, float] = {}


class ReportingSpending:
    """The built-in trainer, noting the epsilon each fit reports (its update carries it too)."""

    def __init__(self, inner: Trainer, partition: int) -> None:
        self.inner, self.partition = inner, partition

    def initial_weights(self) -> Weights:
        return self.inner.initial_weights()

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        result = self.inner.fit(weights, config)
        SPENT[self.partition] = float(result.metrics["dp_epsilon"])
        return result

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return self.inner.evaluate(weights, config)


def trainer(context: TrainerContext) -> Trainer:
    inner = make_trainer(context)
    return ReportingSpending(inner, context.partition) if context.role == "worker" else inner


def main() -> None:
    namespace = os.environ.get("FEDMQ_EXAMPLE_NAMESPACE", f"example-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = AggregatorSettings(
            namespace=namespace,
            strategy="fedbuff",
            buffer_size=2,
            learning_rate=1.0,
            batch_size=64,
            num_partitions=4,
            max_versions=20,
            max_seconds=60,  # a guard: a script should not run on forever
            run_dir=f"{tmp}/run",
            state_dir=f"{tmp}/state",
        )
        dpsgd = {"dpsgd": True, "dpsgd_clip": 1.0, "dpsgd_noise_multiplier": 1.0}
        result = run(settings, trainer, workers=4, worker_settings=dpsgd, cleanup=True)
    summary = result.summary
    print(f"stopped because: {summary.stopped_because}")
    print(f"version {summary.version}, test accuracy {summary.accuracy:.3f}")
    for partition, epsilon in sorted(SPENT.items()):
        updates = summary.workers.get(f"{namespace}-worker-{partition}", {}).get("updates", 0)
        print(
            f"  worker {partition}: {updates:g} updates applied, epsilon {epsilon:.2f} (delta 1e-5)"
        )


if __name__ == "__main__":
    main()
