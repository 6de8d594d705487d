"""Flower's ClientApp for the comparison: a fedmq worker's fit, in Flower's Message API.

Flower's deployment runtime starts a fresh ``flwr-clientapp`` process for every message, so the
trainer is built anew each round; the fit counter is set from the round so that each round
shuffles as a long-lived fedmq worker's n-th fit does, at the learning rate of the round's train
config (``lr``). Node config: ``partition-id``, ``slowdown``.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from bench.flower.task import slow_fit, trainer

app = ClientApp()


@app.train()  # type: ignore[untyped-decorator]
def train(msg: Message, context: Context) -> Message:
    partition = int(context.node_config["partition-id"])
    slowdown = float(context.node_config["slowdown"])
    local = trainer("worker", partition)
    train_config = msg.content["config"]
    local.fits = int(train_config["server-round"]) - 1
    learning_rate = float(train_config["lr"])
    state = msg.content["arrays"].to_torch_state_dict()
    weights = {k: v.numpy() for k, v in state.items()}
    weights, examples = slow_fit(local, weights, slowdown, learning_rate)
    record = ArrayRecord({k: torch.from_numpy(v) for k, v in weights.items()})
    metrics = MetricRecord({"num-examples": examples})
    return Message(RecordDict({"arrays": record, "metrics": metrics}), reply_to=msg)
