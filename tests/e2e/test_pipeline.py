"""End to end with real processes: learning, asynchrony, late joiners, dead workers, bad input."""

from __future__ import annotations

import signal
import uuid

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from fedmq.commands.audit import queue_contents
from harness.procs import Federation, pump_until, wait_for
from schemas.codec import encode
from schemas.messages import ClientUpdate

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

SLOWDOWNS = ["1", "1", "2", "4"]


def confirmed_ids(fed: Federation, workers: list[str]) -> list[str]:
    return [
        e["update_id"] for w in workers for e in fed.worker_events(w) if e["event"] == "confirmed"
    ]


def queued_ids(amqp_url: str, namespace: str) -> list[str]:
    """Message ids still waiting in the results queue (left in place)."""
    return queue_contents(BrokerSettings(amqp_url=amqp_url, namespace=namespace))[0]


def test_four_workers_on_dirichlet_digits_reach_90_percent_asynchronously(
    federation: Federation, amqp_url: str
) -> None:
    fed = federation
    agg = fed.aggregator(
        "--max-versions",
        "800",
        "--strategy",
        "fedasync",
        "--partition",
        "dirichlet",
        "--dirichlet-alpha",
        "0.5",
    )
    workers = [fed.worker(i, "--slowdown", SLOWDOWNS[i]) for i in range(4)]

    assert agg.wait(timeout=180) == 0, fed.log("aggregator.log")[-3000:]
    for w in workers:
        w.wait(timeout=30)

    summary = fed.summary()
    assert summary is not None and summary["accuracy"] >= 0.90, summary
    applied = [e for e in fed.audit() if e["event"] == "applied"]
    assert any(e["staleness"] > 0 for e in applied), "no stale update was applied: not asynchronous"
    assert {e["worker_id"] for e in applied} == {"w0", "w1", "w2", "w3"}
    # Delivery: every update a worker saw confirmed was applied exactly once, or arrived after the
    # end (acknowledged and audited as after-final), or is still queued; nothing was lost and
    # nothing applied twice.
    ids = [e["update_id"] for e in applied]
    assert len(ids) == len(set(ids))
    confirmed = confirmed_ids(fed, ["w0", "w1", "w2", "w3"])
    after_final = [
        e["update_id"]
        for e in fed.audit()
        if e["event"] == "rejected" and e["reason"] == "after-final"
    ]
    leftover = queued_ids(fed.amqp_url, fed.namespace)
    assert sorted(confirmed) == sorted(ids + after_final + leftover)


def test_a_late_worker_gets_the_current_model_at_once_and_contributes(
    federation: Federation,
) -> None:
    fed = federation
    fed.aggregator("--max-seconds", "120", "--num-partitions", "3", num_partitions=3)
    for i in range(2):
        fed.worker(i, num_partitions=3)
    wait_for(lambda: fed.latest_version() >= 30, 60, "version 30 from the first two workers")

    fed.worker(2, num_partitions=3)

    attached = wait_for(
        lambda: [e for e in fed.worker_events("w2") if e["event"] == "attached"],
        30,
        "the late worker to attach",
    )
    received = wait_for(
        lambda: [e for e in fed.worker_events("w2") if e["event"] == "model-received"],
        10,
        "its first model",
    )
    assert received[0]["time"] - attached[0]["time"] < 1.0
    assert received[0]["version"] >= 30
    wait_for(
        lambda: any(e["event"] == "applied" and e["worker_id"] == "w2" for e in fed.audit()),
        30,
        "an applied update from the late worker",
    )


def test_killing_a_worker_does_not_stall_the_aggregator(federation: Federation) -> None:
    fed = federation
    fed.aggregator("--max-seconds", "120", num_partitions=3)
    workers = [fed.worker(i, num_partitions=3) for i in range(3)]
    wait_for(lambda: fed.latest_version() >= 20, 60, "version 20")

    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    at_kill = fed.latest_version()

    wait_for(lambda: fed.latest_version() >= at_kill + 50, 60, "50 more versions after the kill")


def _bad_updates(base: int) -> dict[str, tuple[bytes, str]]:
    good = {"W": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)}

    def body(**over: object) -> bytes:
        fields: dict[str, object] = dict(
            update_id=uuid.uuid4().hex,
            worker_id="intruder",
            base_version=base,
            num_examples=10,
            update_kind="weights",
            train_seconds=0.1,
            arrays=good,
        )
        fields.update(over)
        return encode(ClientUpdate(**fields))  # type: ignore[arg-type]

    nan = dict(good, W=np.full((64, 10), np.nan, np.float32))
    return {
        "malformed": (b"\x92\xc6\x00\x00\x00\x05hello", "framing"),
        "wrong-shape": (
            body(arrays={"W": np.zeros((10, 64), np.float32), "b": good["b"]}),
            "shape-mismatch",
        ),
        "nan": (body(arrays=nan), "non-finite"),
        "future": (body(base_version=base + 10_000), "future-version"),
    }


def test_bad_updates_are_dead_lettered_with_reasons_while_training_carries_on(
    federation: Federation, amqp_url: str
) -> None:
    fed = federation
    agg = fed.aggregator("--max-versions", "400", num_partitions=2)
    for i in range(2):
        fed.worker(i, num_partitions=2)
    version = wait_for(
        lambda: fed.latest_version() if fed.latest_version() >= 10 else 0, 60, "version 10"
    )
    settings = BrokerSettings(amqp_url=amqp_url, namespace=fed.namespace)
    names = Names(fed.namespace)
    bad = _bad_updates(version)

    with AmqpSession(settings) as session:
        for label, (body, _) in bad.items():
            props = update_properties(f"bad-{label}", "guest", 0)
            session.publish(names.inbox_exchange, UPDATE_KEY, body, props)

        assert agg.wait(timeout=120) == 0, fed.log("aggregator.log")[-3000:]
        dead: list[Delivery] = []
        tag = session.consume(names.dead_queue, dead.append)
        pump_until(session, lambda: len(dead) >= len(bad), 20, "the dead letters")
        session.cancel(tag)

    reasons = {d.properties.message_id: d.properties.headers.get("x-fedmq-reason") for d in dead}
    assert reasons == {f"bad-{label}": reason for label, (_, reason) in bad.items()}
    summary = fed.summary()
    assert summary is not None and summary["version"] >= 400
    # In flight when the run reached its last version: acked as after-final, not a refusal.
    refused = {k: n for k, n in summary["rejected"].items() if k != "after-final"}
    assert sum(refused.values()) == len(bad), summary["rejected"]
