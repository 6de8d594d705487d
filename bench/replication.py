"""Broker throughput per node and the cost of replication, on a private three-node cluster.

Persistent messages published one at a time with confirms (as workers publish
updates) into a quorum queue with one replica (the baseline: no replication)
and with a replica on each of the three members, then consumed with manual
acks, prefetch 16. Same cluster, same client, same run; the ratio is the
replication cost. The leader is on the member the client is connected to.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from bench import Context, Row
from broker.connection import AmqpSession, Delivery
from broker.delivery import Properties
from broker.settings import BrokerSettings
from harness.rabbit_cluster import RabbitCluster

CASES = [("40 KB", 40_000, 400), ("4 MB", 4_000_000, 40)]
QUICK_CASES = [("40 KB", 40_000, 50), ("4 MB", 4_000_000, 6)]


def publish_rate(session: AmqpSession, queue: str, body: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        session.publish("", queue, body, Properties())
    return count / (time.perf_counter() - started)


def consume_rate(session: AmqpSession, queue: str, count: int) -> float:
    got: list[Delivery] = []

    def take(delivery: Delivery) -> None:
        got.append(delivery)
        session.ack(delivery.delivery_tag)

    session.set_prefetch(16)
    started = time.perf_counter()
    tag = session.consume(queue, take)
    while len(got) < count:
        session.process_events(0.05)
    rate = count / (time.perf_counter() - started)
    session.cancel(tag)
    return rate


def measure(session: AmqpSession, replicas: int, size: int, count: int) -> tuple[float, float]:
    queue = f"bench-replication-{uuid.uuid4().hex[:8]}"
    arguments = {"x-queue-type": "quorum", "x-quorum-initial-group-size": replicas}
    session.declare_queue(queue, durable=True, arguments=arguments)
    try:
        body = bytes(size)
        return publish_rate(session, queue, body, count), consume_rate(session, queue, count)
    finally:
        session.delete_queue(queue)


def run(ctx: Context) -> Iterable[Row]:
    cases = QUICK_CASES if ctx.quick else CASES
    ctx.log("replication: forming a private three-node cluster")
    with RabbitCluster(base=ctx.scratch("replication")).running() as cluster:
        settings = BrokerSettings(amqp_url=cluster.urls[0], connect_attempts=3)
        with AmqpSession(settings, name="bench-replication") as session:
            for label, size, count in cases:
                one_pub, one_con = measure(session, 1, size, count)
                three_pub, three_con = measure(session, 3, size, count)
                for what, three, one in (
                    ("publish with confirm", three_pub, one_pub),
                    ("consume and ack", three_con, one_con),
                ):
                    yield Row(
                        "broker: quorum queue, 3 replicas",
                        f"{label}, {what}",
                        f"{three:.1f} msg/s ({three * size / 1e6:.0f} MB/s)",
                        f"{one:.1f} msg/s (1 replica)",
                        three / one,
                        note=f"{count} messages, 3 members on this machine",
                    )
