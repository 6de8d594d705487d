"""Aggregator ingest: updates per second end to end against a raw pika relay; the aggregator's peak
RSS.

The results queue is filled first, then the aggregator (FedAsync, its
default prefetch, batching and checkpointing) drains it: consume, decode,
validate, apply, checkpoint (fsync), publish the next version (confirmed),
ack. The relay drains an identical queue, publishing one message of the
same size per message consumed, with confirms. Both rates are timed from
the moment the consumer is registered to the last publish.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np

from aggregator.shell.intake import auto_prefetch
from bench import Context, Row, at_least, at_most
from bench.federation import BenchFederation
from bench.procs import Usage, mb
from broker.topology import QueueLimits, declare_results_queue

CASES = [("40 KB", 10_000, 1500), ("4 MB", 1_000_000, 80), ("40 MB", 10_000_000, 16)]
QUICK_CASES = [("40 KB", 10_000, 100), ("4 MB", 1_000_000, 6)]
RSS_SLACK = 150e6


def rss_limit(model_bytes: int) -> float:
    """The aggregator's memory floor: 2 x the model + 150 MB (docs/performance.md)."""
    return 2 * model_bytes + RSS_SLACK


def aggregator_rate(
    fed: BenchFederation, floats: int, count: int, *flags: str, chunks: bool = False
) -> tuple[float, Usage]:
    """Updates per second from the first publish (consumers registered) to the version that applied
    them all (``chunks``: every update sent as a chunk set).
    """
    fed.prefill(floats, count, chunks=chunks)
    proc = fed.aggregator(
        "--strategy",
        "fedasync",
        "--num-partitions",
        "1",
        "--max-versions",
        str(count),
        "--max-staleness",  # no update is too stale (the window must cover the bound)
        str(count),
        "--eval-every",
        str(10**9),
        *flags,
        floats=floats,
    )
    usage = proc.wait(timeout=600)
    if usage.returncode != 0:
        raise RuntimeError(f"aggregator failed ({usage.returncode}): {proc.tail()}")
    published = [e for e in fed.audit() if e["event"] == "published"]
    first = published[0]["time"]
    last = next(e["time"] for e in published if e["version"] >= count)
    return count / (last - first), usage


def relay_rate(
    fed: BenchFederation, floats: int, count: int, prefetch: int, *, fair: bool
) -> float:
    kind = "fair" if fair else "naive"
    queue, exchange = f"{fed.namespace}.relay-{kind}", f"{fed.namespace}.relay-{kind}-models"
    declare_results_queue(fed.session, fed.names, queue, QueueLimits())
    fed.session.declare_exchange(exchange, "direct", durable=False)
    fed.extra_queues.append(queue)
    fed.extra_exchanges.append(exchange)
    fed.listen(exchange)
    fed.prefill(floats, count, queue=queue)
    args = [
        "--queue",
        queue,
        "--exchange",
        exchange,
        "--count",
        str(count),
        "--prefetch",
        str(prefetch),
        *(["--fair"] if fair else []),
    ]
    proc = fed.spawn("bench.relay", args, f"relay-{kind}", env={"AMQP_URL": fed.ctx.amqp_url})
    usage = proc.wait(timeout=600)
    lines = [line for line in proc.log.read_text().splitlines() if line.startswith("{")]
    if usage.returncode != 0 or not lines:
        raise RuntimeError(f"relay failed ({usage.returncode}): {proc.tail()}")
    result = json.loads(lines[-1])
    return float(result["count"] / result["seconds"])


def run(ctx: Context) -> Iterable[Row]:
    for label, floats, count in QUICK_CASES if ctx.quick else CASES:
        prefetch = auto_prefetch({"w": np.zeros(floats, np.float32)})
        with BenchFederation(ctx, "ingest") as fed:
            relay = relay_rate(fed, floats, count, prefetch, fair=True)
            naive = relay_rate(fed, floats, count, prefetch, fair=False)
            ours, usage = aggregator_rate(fed, floats, count)
        with BenchFederation(ctx, "ingest-volatile") as fed:  # a state directory of its own
            volatile, _ = aggregator_rate(fed, floats, count, "--no-checkpoint")
        ctx.log(
            f"ingest {label}: aggregator {ours:.1f} upd/s ({volatile:.1f} without checkpoints), "
            f"fair relay {relay:.1f} msg/s, naive {naive:.1f} msg/s, "
            f"peak RSS {mb(usage.peak_rss)}, load {os.getloadavg()[0]:.1f}"
        )
        yield from rows(label, floats, f"{count} updates, prefetch {prefetch}", ours, relay, naive)
        yield Row(
            "aggregator ingest",
            f"{label} model, --no-checkpoint",
            f"{volatile:.1f} upd/s",
            f"{relay:.1f} msg/s (fair pika relay)",
            volatile / relay,
            "",
            None,
            "what the checkpoint's fsync costs",
        )
        limit = rss_limit(floats * 4)
        yield Row(
            "memory: aggregator peak RSS",
            f"{label} model",
            mb(usage.peak_rss),
            f"2 x model + 150 MB = {mb(limit)}",
            usage.peak_rss / limit,
            "<= 1x",
            at_most(usage.peak_rss / limit, 1.0),
            f"prefetch {prefetch}",
        )


def rows(
    label: str, floats: int, note: str, ours: float, relay: float, naive: float
) -> Iterable[Row]:
    load = f"load {os.getloadavg()[0]:.1f}"
    yield Row(
        "aggregator ingest",
        f"{label} model",
        f"{ours:.1f} upd/s",
        f"{relay:.1f} msg/s (fair pika relay)",
        ours / relay,
        ">= 0.9x",
        at_least(ours / relay, 0.9),
        f"{note}, {load}",
    )
    yield Row(
        "aggregator ingest",
        f"{label} model vs the naive relay",
        f"{ours:.1f} upd/s",
        f"{naive:.1f} msg/s (publish + ack per message)",
        ours / naive,
        "",
        None,
        "the earlier baseline, for comparison",
    )
