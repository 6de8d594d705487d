"""Scale-out FedBuff as real processes: two edges behind RabbitMQ's consistent-hash exchange and a
root, on a private node with the ``rabbitmq_consistent_hash_exchange`` plugin.

The root's final model must equal, bit for bit, one exact-buffer aggregator
replaying the same steps (the ids each version holds, from the root's
checkpoint), and every published update must be applied exactly once, while
an edge and then the root are SIGKILLed mid-run and started again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.connection import AmqpSession
from broker.edges import EdgeNames
from broker.settings import BrokerSettings
from harness.procs import wait_for
from harness.rabbit_node import RabbitNode
from harness.scaleout import (
    ScaleoutRun,
    initial_model,
    publish,
    replay,
    same_bits,
    seeded_updates,
)

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

EDGES, K, VERSIONS, WORKERS = 2, 6, 16, 12
SEED = int(os.environ.get("FEDMQ_FAULT_SEED", "7"))


@pytest.fixture(scope="module")
def hash_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A private node with the consistent-hash plugin (the machine's broker is not reconfigured)."""
    plugins = ("rabbitmq_consistent_hash_exchange",)
    with RabbitNode(base=tmp_path_factory.mktemp("hash"), plugins=plugins).running() as node:
        yield node


def depths(settings: BrokerSettings, edges: int) -> list[int]:
    names = EdgeNames(settings.namespace)
    with AmqpSession(settings) as session:
        return [session.queue_counts(names.edge_queue(i))[0] for i in range(edges)]


def test_edges_and_root_equal_one_aggregator_and_apply_each_update_once_across_crashes(
    hash_node: RabbitNode, tmp_path: Path
) -> None:
    settings = BrokerSettings(amqp_url=hash_node.amqp_url, namespace=f"so-{os.getpid()}")
    model = initial_model(2_000)
    updates = seeded_updates(model, K * VERSIONS, WORKERS, SEED)
    run = ScaleoutRun(settings, tmp_path, EDGES, K, VERSIONS, extra=["--heartbeat", "5"])
    run.write_init(model)
    half = len(updates) // 2
    try:
        run.start_edge(0)  # declares the topology; then the first half waits in the edge queues
        wait_for(lambda: _declared(settings), 60, "the edge topology")
        run.edge_procs[0].kill()
        run.edge_procs[0].wait(timeout=10)
        publish(settings, updates[:half])
        spread = depths(settings, EDGES)
        run.start()
        wait_for(lambda: run.version() >= 3, 60, "version 3")
        run.edge_procs[0].kill()  # holds unacked updates: they must come back to its successor
        run.edge_procs[0].wait(timeout=10)
        run.start_edge(0)
        wait_for(lambda: run.version() >= 5, 60, "version 5")
        assert run.root is not None
        run.root.kill()  # mid-plan: the next root plans again from its checkpoint
        run.root.wait(timeout=10)
        run.start_root()
        publish(settings, updates[half:])
        code = run.root.wait(timeout=120)
        for proc in run.edge_procs.values():
            proc.wait(timeout=30)  # they stop once told the run ended
        left = depths(settings, EDGES)
    finally:
        run.close()

    assert code == 0, run.log("root.log")
    assert sum(spread) == half and min(spread) > 0, spread  # the hash exchange split them
    state = run.state(model)
    applied = [uid for step in state.steps for uid in step]
    assert state.version == VERSIONS
    assert all(len(step) == K for step in state.steps)
    assert sorted(applied) == sorted(u.update_id for u in updates)  # each once, none lost
    assert left == [0] * EDGES  # and every one acknowledged
    reference = replay(model, state.steps, {u.update_id: u for u in updates}, 1.0)
    assert same_bits(state.model, reference)


def _declared(settings: BrokerSettings) -> bool:
    try:
        depths(settings, EDGES)
    except Exception:
        return False
    return True
