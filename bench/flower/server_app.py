"""Flower's ServerApp for the comparison: Flower's own FedAvg over all eight SuperNodes.

Every round trains on every node (``fraction_train=1``, waits for all eight) and evaluates the
new global model centrally (``evaluate_fn``) with fedmq's aggregator-side trainer on the same
test set; there is no federated evaluation (``fraction_evaluate=0``), as fedmq's workers do not
evaluate either. The learning rate (``learning-rate``) travels to the clients in every round's
train config, as fedmq's aggregator tells its workers theirs. Each evaluation is appended to
``curve-path`` as a JSON line with the seconds since this function started (the clock fedmq's
aggregator keeps from its own start).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from bench.flower.task import CLIENTS, config, trainer

app = ServerApp()


@app.main()  # type: ignore[untyped-decorator]
def main(grid: Grid, context: Context) -> None:
    started = time.monotonic()
    curve = Path(str(context.run_config["curve-path"]))
    server = trainer("aggregator")
    learning_rate = float(context.run_config["learning-rate"])

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        weights = {k: v.numpy() for k, v in arrays.to_torch_state_dict().items()}
        accuracy = float(server.evaluate(weights, config()).metrics["accuracy"])
        line = {"elapsed": time.monotonic() - started, "round": server_round, "accuracy": accuracy}
        with curve.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return MetricRecord({"accuracy": accuracy})

    initial = {k: torch.from_numpy(v) for k, v in server.initial_weights().items()}
    strategy = FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=CLIENTS,
        min_available_nodes=CLIENTS,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(initial),
        num_rounds=int(context.run_config["num-server-rounds"]),
        train_config=ConfigRecord({"lr": learning_rate}),
        evaluate_fn=evaluate,
    )
