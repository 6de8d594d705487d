"""Compressed updates end to end: one federation per mode, side by side, each learning on digits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from broker.connection import AmqpSession
from broker.names import Names
from broker.settings import BrokerSettings
from broker.topology import delete_topology
from harness.procs import Federation

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

MODES = ("float16", "int8", "topk")
VERSIONS = 10


@pytest.fixture
def federations(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Federation]]:
    feds = {
        mode: Federation(
            namespace=(ns := f"t-{uuid.uuid4().hex[:10]}"),
            amqp_url=amqp_url,
            run_dir=tmp_path_factory.mktemp(ns),
        )
        for mode in MODES
    }
    try:
        yield feds
    finally:
        for fed in feds.values():
            fed.close()
            with AmqpSession(BrokerSettings(amqp_url=amqp_url, namespace=fed.namespace)) as s:
                delete_topology(s, Names(fed.namespace))


def test_every_compression_mode_trains_and_every_update_is_applied_once(
    federations: dict[str, Federation],
) -> None:
    aggregators = {
        mode: fed.aggregator(
            "--strategy", "fedbuff", "--buffer-size", "2", "--max-versions", str(VERSIONS),
            "--compression", mode, "--topk-fraction", "0.1", num_partitions=2,
        )
        for mode, fed in federations.items()
    }  # fmt: skip
    for fed in federations.values():
        for i in range(2):
            fed.worker(i, num_partitions=2)

    for mode, agg in aggregators.items():
        assert agg.wait(timeout=150) == 0, federations[mode].log("aggregator.log")[-3000:]

    for mode, fed in federations.items():
        summary = fed.summary()
        assert summary is not None and summary["version"] >= VERSIONS, (
            mode,
            summary,
        )  # a batch may step twice
        assert set(summary["rejected"]) <= {"after-final"}, (mode, summary)  # in flight at the end
        assert summary["accuracy"] >= 0.5, (mode, summary)  # chance is 0.1
        applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
        assert len(applied) == len(set(applied)) >= 2 * VERSIONS
