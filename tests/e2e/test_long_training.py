"""Long training: a fit longer than the broker's consumer timeout and many heartbeats keeps its
connection and delivers.

A private node with a 5 s consumer timeout (checked every second instead of
every minute) and 2 s heartbeats; the worker's fit takes 12 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.errors import ConnectionLost
from broker.names import UPDATE_KEY, Names
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from harness.procs import Federation, pump_until, wait_for
from harness.rabbit_node import RabbitNode

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CONSUMER_TIMEOUT_S = 5
HEARTBEAT_S = 2
FIT_DELAY_S = 12


@pytest.fixture(scope="module")
def strict_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    node = RabbitNode(
        base=tmp_path_factory.mktemp("strict-rabbit"),
        extra_config=f"consumer_timeout = {CONSUMER_TIMEOUT_S * 1000}\n",
        advanced_config="{rabbit, [{channel_tick_interval, 1000}]}",
    )
    with node.running():
        yield node


def test_the_node_really_closes_a_channel_that_holds_a_delivery_too_long(
    strict_node: RabbitNode,
) -> None:
    """The control: without prompt acks, the consumer timeout bites."""
    settings = BrokerSettings(amqp_url=strict_node.amqp_url, namespace="holder", connect_attempts=3)
    names = Names("holder")
    held: list[Delivery] = []
    with AmqpSession(settings) as session:
        declare_topology(session, names)
        session.publish(
            names.inbox_exchange, UPDATE_KEY, b"x", Properties(message_id="held-delivery")
        )
        session.consume(names.results_queue, held.append)

        with pytest.raises(ConnectionLost, match="consumer_timeout"):
            pump_until(
                session,
                lambda: False,
                4 * CONSUMER_TIMEOUT_S,
                "the consumer timeout",
            )
    assert len(held) == 1


def test_a_worker_training_longer_than_the_consumer_timeout_keeps_its_connection(
    strict_node: RabbitNode, tmp_path: Path
) -> None:
    fed = Federation(namespace="longfit", amqp_url=strict_node.amqp_url, run_dir=tmp_path)
    beat = ["--heartbeat", str(HEARTBEAT_S)]
    try:
        agg = fed.aggregator("--max-versions", "1", *beat, num_partitions=1)
        fed.worker(0, "--delay", str(FIT_DELAY_S), *beat, num_partitions=1)

        assert agg.wait(timeout=FIT_DELAY_S + 60) == 0, fed.log("aggregator.log")[-3000:]
        wait_for(
            lambda: fed.procs[1].poll() is not None, 30, "the worker to stop on the final model"
        )
    finally:
        fed.close()

    events = fed.worker_events("w0")
    confirmed = [e for e in events if e["event"] == "confirmed"]
    assert [e["event"] for e in events].count("attached") == 1, fed.log("w0.log")[-3000:]
    assert len(confirmed) == 1 and confirmed[0]["train_seconds"] >= FIT_DELAY_S > CONSUMER_TIMEOUT_S
    assert FIT_DELAY_S >= 5 * HEARTBEAT_S
    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    assert applied == [confirmed[0]["update_id"]]
