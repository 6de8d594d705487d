"""fedmq on the same task: the real aggregator and eight worker processes over the broker.

As in ``bench.accuracy``, the workers attach first and the clock is the aggregator's, from its
start; each run lasts ``seconds`` of it (``--max-seconds``). Every strategy evaluates once per
eight client updates, as Flower does once per round of eight.
"""

from __future__ import annotations

from bench import Context
from bench.federation import BenchFederation
from bench.flower.curves import Curve
from bench.flower.task import CLIENTS, EVAL_UPDATES, LOCAL_EPOCHS, SLOWDOWNS
from bench.waiting import wait_until

TRAINER = ["--trainer", "torchtrain.mnist1d:make_trainer", "--num-partitions", str(CLIENTS)]
BUFFER = 4
#: Strategy flags, and the client updates each version takes (to evaluate every eight updates).
STRATEGIES: dict[str, tuple[list[str], int]] = {
    "fedasync": (["--strategy", "fedasync"], 1),
    "fedbuff": (["--strategy", "fedbuff", "--buffer-size", str(BUFFER)], BUFFER),
    "fedavg": (["--strategy", "fedavg", "--round-min-workers", str(CLIENTS)], CLIENTS),
}


def fedmq_curve(ctx: Context, strategy: str, seconds: float, learning_rate: float) -> Curve:
    flags, per_version = STRATEGIES[strategy]
    with BenchFederation(ctx, f"flower-{strategy}") as fed:
        workers = [
            fed.worker(
                f"w{i}", *TRAINER, "--partition-index", str(i), "--slowdown", str(SLOWDOWNS[i])
            )
            for i in range(CLIENTS)
        ]
        attached = lambda: all(fed.attached(f"w{i}") for i in range(CLIENTS))  # noqa: E731
        wait_until(attached, 300, "the workers to attach")
        agg = fed.aggregator(
            *TRAINER, *flags,
            "--learning-rate", repr(learning_rate), "--local-epochs", str(LOCAL_EPOCHS),
            "--eval-every", str(EVAL_UPDATES // per_version), "--max-seconds", str(seconds),
        )  # fmt: skip
        usage = agg.wait(timeout=seconds + 300)
        for w in workers:
            w.terminate()
            w.wait(timeout=60)
        if usage.returncode != 0:
            raise RuntimeError(f"aggregator failed: {agg.tail()}")
        evals = [e for e in fed.events("aggregator", "metrics.jsonl") if e["event"] == "eval"]
    return [(float(e["elapsed"]), float(e["accuracy"])) for e in evals]
