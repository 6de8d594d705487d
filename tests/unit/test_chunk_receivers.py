"""The two receivers of chunk sets: a worker's model inbox (in memory), the aggregator's spool."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aggregator.core.validation import Rejected
from aggregator.shell.spool import Assembled, RefusedChunk, Spool
from broker.chunked import chunk_properties
from broker.delivery import Delivery, Properties
from runtime.eventlog import EventLog
from schemas.chunks import read_chunk_header, split
from schemas.codec import CONTENT_TYPE, Limits, encode
from schemas.messages import ModelVersion
from schemas.reassembly import ChunkLimits
from worker.inbox import ModelInbox
from worker.metrics import WorkerMetrics

AGG = "fed-aggregator"


def model_body(version: int) -> bytes:
    arrays = {"W": np.full((40, 10), version, np.float32)}
    return encode(ModelVersion(run_id="run-1", version=version, created_at=0.0, arrays=arrays))


def inbox() -> ModelInbox:
    return ModelInbox(limits=Limits(), events=EventLog(None), metrics=WorkerMetrics(), sender=AGG)


def feed(box: ModelInbox, body: bytes, set_id: str, order: list[int], user: str = AGG) -> int:
    chunks = split(body, len(body) // 5 + 1, set_id)  # five chunks
    for i in order:
        header, data = chunks[i]
        box.receive(bytes(data), CONTENT_TYPE, header.amqp_headers(), user)
    return len(chunks)


def test_a_worker_reassembles_a_chunked_model_in_any_order_and_learns_its_chunk_count() -> None:
    box = inbox()

    count = feed(box, model_body(3), "run-1.v3", [2, 0, 3, 1])

    assert box.latest is None  # not whole yet: 4 of 5 chunks
    feed(box, model_body(3), "run-1.v3", [4])
    assert box.latest is not None and box.latest.version == 3
    assert float(box.latest.arrays["W"][0, 0]) == 3.0
    assert box.assembly.largest_set == count == 5


def test_a_newer_set_replaces_a_partial_one_and_a_strangers_chunks_never_count() -> None:
    box = inbox()
    feed(box, model_body(4), "run-1.v4", [0, 1, 2])

    feed(box, model_body(5), "run-1.v5", [0, 1, 2, 3, 4], user="mallory")  # not the aggregator
    feed(box, model_body(5), "run-1.v5", [0, 1, 2, 3, 4])
    feed(box, model_body(4), "run-1.v4", [3, 4])  # the rest of the abandoned set: incomplete

    assert box.latest is not None and box.latest.version == 5
    assert box.refused == {"mallory": 5}


def deliveries(body: bytes, set_id: str, user: str, first_tag: int) -> list[Delivery]:
    props = Properties(content_type=CONTENT_TYPE, message_id=set_id, user_id=user)
    return [
        Delivery(first_tag + i, False, "update", bytes(data), chunk_properties(props, header))
        for i, (header, data) in enumerate(split(body, 700, set_id))
    ]


def spool(tmp_path: Path, idle: float = 10.0) -> Spool:
    limits = ChunkLimits(max_total_bytes=1 << 20, max_chunk_bytes=1 << 20, idle_seconds=idle)
    return Spool(tmp_path / "spool", limits)


def take_all(s: Spool, items: list[Delivery], now: float = 0.0) -> list[object]:
    out: list[object] = []
    for d in items:
        parsed = read_chunk_header(d.properties.headers)
        assert parsed is not None
        got = s.take(d, parsed, now)
        if got is not None:
            out.append(got)
    return out


def test_the_spool_reassembles_on_disk_and_hands_over_every_tag(tmp_path: Path) -> None:
    body = model_body(7)
    chunks = deliveries(body, "upd-0001", "alice", first_tag=10)
    s = spool(tmp_path)

    (whole,) = take_all(s, list(reversed(chunks)))

    assert isinstance(whole, Assembled)
    assert sorted(whole.tags) == [d.delivery_tag for d in chunks]
    assert whole.body() == body
    assert list((tmp_path / "spool").iterdir()) == []  # the file goes once read


def test_a_forged_chunk_fails_the_sets_digest_and_a_wrong_length_costs_only_itself(
    tmp_path: Path,
) -> None:
    chunks = deliveries(model_body(8), "upd-0002", "alice", first_tag=1)
    forged = Delivery(
        chunks[1].delivery_tag, False, "update", b"\x01" * len(chunks[1].body), chunks[1].properties
    )
    short = Delivery(99, False, "update", chunks[2].body[:-1], chunks[2].properties)
    s = spool(tmp_path)

    got = take_all(s, [chunks[0], forged, short, *chunks[2:]])

    refused, whole = got
    assert isinstance(refused, RefusedChunk) and refused.rejected.reason == "chunk-length"
    assert isinstance(whole, Assembled)
    verdict = whole.body()
    assert isinstance(verdict, Rejected) and verdict.reason == "chunk-digest"


def test_an_idle_partial_set_is_given_up_with_its_tags(tmp_path: Path) -> None:
    chunks = deliveries(model_body(9), "upd-0003", "alice", first_tag=5)
    s = spool(tmp_path, idle=2.0)
    take_all(s, chunks[:2], now=0.0)

    assert s.expired(1.0) == []
    (gone,) = s.expired(2.5)

    assert gone.tags == (5, 6) and gone.rejected.reason == "incomplete-chunks"
    assert s.lowest_tag() is None
