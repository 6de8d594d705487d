"""Models and updates larger than the broker's message size limit travel as chunk sets.

One federation runs on a private node whose ``max_message_size`` is smaller
than the model; hostile chunk sets go to a real aggregator on the shared node.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest

from broker.chunked import chunk_properties
from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.errors import BrokerError
from broker.names import REQUEST_KEY, UPDATE_KEY, Names
from broker.properties import request_properties, update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology, declare_worker_queue
from fedmq.commands.audit import queue_contents
from harness.procs import Federation, pump_until, wait_for
from harness.rabbit_node import RabbitNode
from schemas.chunks import INDEX_HEADER, TOTAL_HEADER, ChunkHeader, split
from schemas.codec import decode, encode
from schemas.messages import ClientUpdate, ModelRequest, ModelVersion

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

BROKER_LIMIT = 32 << 10  # the private node's max_message_size
CHUNK = 16 << 10
PIECE = 600  # hostile sets: a 2.9 KB logistic-regression update in 5 chunks
#: An MLP with 256 hidden units on digits: 19,210 float32 parameters, 77 KB, 5 chunks.
MODEL_FLAGS = ("--model", "mlp", "--hidden", "256", "--chunk-bytes", str(CHUNK))


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    extra = f"max_message_size = {BROKER_LIMIT}\n"
    with RabbitNode(base=tmp_path_factory.mktemp("small"), extra_config=extra).running() as node:
        yield node


def test_a_model_above_the_brokers_limit_trains_in_chunks_and_each_update_applies_once(
    small_node: RabbitNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    settings = BrokerSettings(amqp_url=small_node.amqp_url, namespace=ns, connect_attempts=3)
    with AmqpSession(settings) as session, pytest.raises(BrokerError):  # the limit is real
        declare_topology(session, Names(ns))
        session.publish(Names(ns).inbox_exchange, UPDATE_KEY, bytes(BROKER_LIMIT + 1), Properties())
    fed = Federation(
        namespace=ns, amqp_url=small_node.amqp_url, run_dir=tmp_path_factory.mktemp(ns)
    )
    try:
        agg = fed.aggregator(  # --prefetch 1: chunk sets must widen the window to become whole
            "--max-versions",
            "8",
            "--strategy",
            "fedasync",
            "--prefetch",
            "1",
            *MODEL_FLAGS,
            num_partitions=2,
        )
        workers = [fed.worker(i, *MODEL_FLAGS, num_partitions=2) for i in range(2)]
        assert agg.wait(timeout=150) == 0, fed.log("aggregator.log")[-3000:]
        for w in workers:
            w.wait(timeout=30)
    finally:
        fed.close()

    summary = fed.summary()
    assert summary is not None and summary["version"] == 8, summary
    assert set(summary["rejected"]) <= {"after-final"}, summary  # in flight at the end only
    assert summary["accuracy"] >= 0.5, summary  # it learned (10 classes: chance is 0.1)
    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    assert len(applied) == len(set(applied)) >= 8
    confirmed = [
        e["update_id"]
        for w in ("w0", "w1")
        for e in fed.worker_events(w)
        if e["event"] == "confirmed"
    ]
    leftover = set(queue_contents(settings)[0])  # a queued update is several chunks, one id
    after_final = [  # in flight at the end: acknowledged and audited, never applied
        e["update_id"]
        for e in fed.audit()
        if e["event"] == "rejected" and e["reason"] == "after-final"
    ]
    assert sorted(confirmed) == sorted(applied + after_final + sorted(leftover))
    assert all(
        any(e["event"] == "model-received" for e in fed.worker_events(w)) for w in ("w0", "w1")
    )


def current_model(session: AmqpSession, names: Names) -> ModelVersion:
    """Ask for the current model like an attaching worker, and wait for the answer."""
    got: list[Delivery] = []
    tag = session.consume(declare_worker_queue(session, names, "chunk-observer"), got.append)
    request = encode(ModelRequest(worker_id="chunk-observer"))
    props = request_properties("chunk-observer", session.username)
    session.publish(names.inbox_exchange, REQUEST_KEY, request, props)
    pump_until(session, lambda: got, 30, "a model version")
    session.cancel(tag)
    return decode(got[-1].body, ModelVersion, content_type=got[-1].properties.content_type)


def was_applied(fed: Federation, update_id: str) -> bool:
    return any(e["event"] == "applied" and e.get("update_id") == update_id for e in fed.audit())


def publish_chunks(
    session: AmqpSession,
    names: Names,
    chunks: list[tuple[ChunkHeader, memoryview]],
    props: Properties,
    order: list[int],
    *,
    tamper: dict[str, object] | None = None,
    body_of: dict[int, bytes] | None = None,
) -> None:
    for i in order:
        header, data = chunks[i]
        p = chunk_properties(props, header)
        if tamper:
            p = replace(p, headers={**p.headers, **tamper})
        body = (body_of or {}).get(i, bytes(data))
        session.publish(names.inbox_exchange, UPDATE_KEY, body, p)


def test_partial_duplicate_reordered_forged_and_oversized_chunk_sets_cost_only_themselves(
    federation: Federation, broker_settings: BrokerSettings
) -> None:
    fed, names = federation, Names(broker_settings.namespace)
    fed.aggregator(
        "--max-seconds",
        "120",
        "--strategy",
        "fedasync",
        "--chunk-idle-seconds",
        "1.5",
        "--max-message-bytes",
        str(1 << 20),
    )
    wait_for(lambda: fed.latest_version() >= 0, 60, "the aggregator's first version")
    with AmqpSession(broker_settings) as session:
        model = current_model(session, names)

        def update(uid: str) -> tuple[bytes, Properties]:
            u = ClientUpdate(
                update_id=uid,
                worker_id="w9",
                base_version=model.version,
                num_examples=10,
                update_kind="weights",
                train_seconds=0.1,
                arrays=dict(model.arrays),
            )
            return encode(u), update_properties(uid, session.username, model.version)

        good_body, good_props = update("chunked-good-1")
        good = split(good_body, PIECE, "chunked-good-1")
        order = list(range(len(good)))
        random.Random(7).shuffle(order)
        publish_chunks(
            session, names, good, good_props, order[:2] + order[:1] + order[2:]
        )  # out of order, a copy
        # Only once it is applied is a second set of the same update a replay: before that its
        # chunks are copies of the open set's, which the set absorbs (no duplicate to report).
        wait_for(partial(was_applied, fed, "chunked-good-1"), 60, "the first set applied")
        publish_chunks(session, names, good, good_props, order)  # the whole update again: a replay

        part_body, part_props = update("chunked-partial")
        publish_chunks(
            session, names, split(part_body, PIECE, "chunked-partial"), part_props, [0, 2]
        )

        forged_body, forged_props = update("chunked-forged")
        forged = split(forged_body, PIECE, "chunked-forged")
        publish_chunks(
            session,
            names,
            forged,
            forged_props,
            list(range(len(forged))),
            body_of={1: b"\x01" * len(forged[1][1])},
        )  # same lengths, other bytes

        big_body, big_props = update("chunked-oversize")
        publish_chunks(
            session,
            names,
            split(big_body, PIECE, "chunked-oversize"),
            big_props,
            [0],
            tamper={TOTAL_HEADER: 64 << 20},
        )  # declares 64 MiB: refused at once
        bad_body, bad_props = update("chunked-badhdr")
        publish_chunks(
            session,
            names,
            split(bad_body, PIECE, "chunked-badhdr"),
            bad_props,
            [1],
            tamper={INDEX_HEADER: "one"},
        )

        after_body, after_props = update("chunked-good-2")
        publish_chunks(
            session,
            names,
            split(after_body, PIECE, "chunked-good-2"),
            after_props,
            list(reversed(range(5))),
        )

    def settled() -> list[dict[str, object]] | None:
        events = [e for e in fed.audit() if e["event"] in ("applied", "duplicate", "rejected")]
        return events if any(e.get("reason") == "incomplete-chunks" for e in events) else None

    events = wait_for(settled, 60, "the partial set to be given up")
    applied = [e["update_id"] for e in events if e["event"] == "applied"]
    duplicates = [e["update_id"] for e in events if e["event"] == "duplicate"]
    rejected = sorted((e["message_id"], e["reason"]) for e in events if e["event"] == "rejected")
    assert applied == ["chunked-good-1", "chunked-good-2"]
    assert duplicates == ["chunked-good-1"]
    assert rejected == [
        ("chunked-badhdr", "bad-chunk"),
        ("chunked-forged", "chunk-digest"),
        ("chunked-oversize", "too-large"),
        ("chunked-partial", "incomplete-chunks"),
    ]
