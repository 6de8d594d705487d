"""The federation's topology as data: one list for AMQP, the management API and definitions."""

from __future__ import annotations

from broker.declarations import (
    Binding,
    Exchange,
    Queue,
    QueueLimits,
    as_definitions,
    shared_topology,
    worker_topology,
)
from broker.names import Names

NAMES = Names("ns")


def test_every_binding_follows_the_declaration_of_its_queue_and_exchange() -> None:
    declared: set[str] = set()
    for d in shared_topology(NAMES, QueueLimits()) + worker_topology(NAMES, "w"):
        if isinstance(d, Binding):
            assert {f"q:{d.queue}", f"e:{d.exchange}"} <= declared, d
        else:
            declared.add(f"{'e' if isinstance(d, Exchange) else 'q'}:{d.name}")


def test_a_workers_queue_is_latest_value_and_bound_to_its_two_keys() -> None:
    queue, *bindings = worker_topology(NAMES, "w")

    assert queue == Queue(
        "ns.models.w", {"x-queue-type": "classic", "x-max-length": 1, "x-overflow": "drop-head"}
    )
    assert [(b.exchange, b.routing_key) for b in bindings if isinstance(b, Binding)] == [
        ("ns.models", "broadcast"),
        ("ns.models", "worker.w"),
    ]


def test_definitions_carry_the_results_queues_bounds() -> None:
    defs = as_definitions(shared_topology(NAMES, QueueLimits(results_max_length=7)), "fed")

    results = next(q for q in defs["queues"] if q["name"] == "ns.results")
    assert results["vhost"] == "fed" and results["durable"] is True
    assert results["arguments"]["x-max-length"] == 7
    assert results["arguments"]["x-dead-letter-exchange"] == "ns.dead"
    assert {"source": "ns.inbox", "destination": "ns.results", "routing_key": "update"}.items() <= (
        next(b for b in defs["bindings"] if b["destination"] == "ns.results").items()
    )
    assert sorted(e["name"] for e in defs["exchanges"]) == [
        "ns.dead",
        "ns.inbox",
        "ns.models",
        "ns.status",
    ]
