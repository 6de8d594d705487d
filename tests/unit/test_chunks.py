"""Chunked transfer's pure core: splitting, chunk headers, and reassembly in any order and loss."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.chunks import (
    COUNT_HEADER,
    INDEX_HEADER,
    TOTAL_HEADER,
    ChunkHeader,
    chunk_count,
    read_chunk_header,
    split,
)
from schemas.errors import DecodeError
from schemas.reassembly import (
    ChunkLimits,
    Complete,
    Reassembly,
    Redundant,
    Refused,
    Store,
)

LIMITS = ChunkLimits(max_total_bytes=1 << 20, max_chunk_bytes=1 << 16, idle_seconds=10.0)


def reassemble(
    core: Reassembly, chunks: list[tuple[ChunkHeader, memoryview]], order: list[int], sender: str
) -> tuple[bytearray | None, list[Complete]]:
    """Offer chunks in ``order`` (tags are positions in it); place stored bytes in a buffer."""
    buffer: bytearray | None = None
    done: list[Complete] = []
    for tag, i in enumerate(order):
        header, data = chunks[i]
        verdict = core.offer(header, sender, tag, len(data), now=float(tag))
        if isinstance(verdict, Store | Complete):
            if verdict.new_set:
                buffer = bytearray(header.total_bytes)
            assert buffer is not None
            buffer[verdict.offset : verdict.offset + len(data)] = data
        if isinstance(verdict, Complete):
            done.append(verdict)
    return buffer, done


def test_a_body_is_cut_into_equal_chunks_and_a_shorter_last_one() -> None:
    body = bytes(range(10))

    chunks = split(body, 3, "set-1")

    assert [bytes(c) for _, c in chunks] == [b"\0\1\2", b"\3\4\5", b"\6\7\x08", b"\x09"]
    assert {h.count for h, _ in chunks} == {4}
    assert {h.sha256 for h, _ in chunks} == {hashlib.sha256(body).hexdigest()}
    assert [h.offset for h, _ in chunks] == [0, 3, 6, 9]


def test_a_body_that_fits_is_not_chunked() -> None:
    assert split(b"x" * 100, 100, "s") == []
    assert chunk_count(100, 100) == 1 and chunk_count(101, 100) == 2


@settings(max_examples=200, deadline=None)
@given(total=st.integers(2, 3000), pieces=st.integers(1, 60))
def test_every_split_covers_the_body_exactly_with_valid_headers(total: int, pieces: int) -> None:
    body = bytes(i % 251 for i in range(total))
    chunk = max(1, -(-total // pieces))

    chunks = split(body, chunk, "s")

    if total <= chunk:
        assert chunks == []
        return
    assert b"".join(bytes(c) for _, c in chunks) == body
    assert all(0 < len(c) <= chunk and len(c) == h.length for h, c in chunks)
    assert [read_chunk_header(h.amqp_headers()) for h, _ in chunks] == [h for h, _ in chunks]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), total=st.integers(2, 3000), pieces=st.integers(2, 40))
def test_any_order_with_duplicates_reassembles_the_body_once(
    data: st.DataObject, total: int, pieces: int
) -> None:
    body = bytes((i * 7) % 256 for i in range(total))
    chunks = split(body, max(1, total // pieces), "upd-1") or [
        (h, memoryview(body[h.offset : h.offset + h.length])) for h in _two(body)
    ]
    order = data.draw(st.permutations(range(len(chunks))))
    # copies of chunks already received, arriving before the set is whole (a resumed publish)
    dupes = data.draw(st.lists(st.sampled_from(order[:-1]), max_size=5))
    order = list(order[:-1]) + dupes + [order[-1]]
    core = Reassembly(LIMITS)

    buffer, done = reassemble(core, chunks, order, "alice")

    assert buffer is not None and bytes(buffer) == body
    assert len(done) == 1
    assert sorted(done[0].tags) == list(range(len(order)))  # every delivery, duplicates too
    assert core.held_tags() == 0 and core.lowest_tag() is None


@settings(max_examples=150, deadline=None)
@given(data=st.data(), total=st.integers(20, 3000))
def test_a_set_with_a_lost_chunk_never_completes_and_is_given_up_when_idle(
    data: st.DataObject, total: int
) -> None:
    body = bytes(total)
    chunks = split(body, max(1, total // 7), "upd-2")
    order = data.draw(st.permutations(range(len(chunks))))
    lost = data.draw(st.integers(1, len(chunks)))
    kept = list(order[:-lost])
    core = Reassembly(LIMITS)

    _, done = reassemble(core, chunks, kept, "alice")

    assert done == []
    assert core.expired(now=len(kept) + 5.0) == []  # not idle yet
    abandoned = core.expired(now=len(kept) + LIMITS.idle_seconds)
    if kept:
        (gone,) = abandoned
        assert sorted(gone.tags) == list(range(len(kept)))
        assert gone.missing == len(chunks) - len(set(kept))
    else:
        assert abandoned == []
    assert core.held_tags() == 0


def test_a_chunk_that_contradicts_its_set_costs_only_itself() -> None:
    good = split(b"a" * 100, 40, "upd-3")
    forged = split(b"b" * 100, 40, "upd-3")  # same set id, another digest
    core = Reassembly(LIMITS)
    core.offer(good[0][0], "alice", 1, len(good[0][1]), 0.0)

    verdict = core.offer(forged[1][0], "alice", 2, len(forged[1][1]), 0.0)
    rest = [core.offer(h, "alice", 3 + i, len(c), 0.0) for i, (h, c) in enumerate(good[1:])]

    assert isinstance(verdict, Refused) and verdict.reason == "chunk-mismatch"
    assert isinstance(rest[-1], Complete) and rest[-1].tags == (1, 3, 4)


def test_another_sender_cannot_add_to_or_spoil_a_set() -> None:
    chunks = split(b"c" * 90, 30, "upd-4")
    core = Reassembly(LIMITS)
    core.offer(chunks[0][0], "alice", 1, 30, 0.0)
    core.offer(chunks[1][0], "alice", 2, 30, 0.0)

    mallory = core.offer(chunks[2][0], "mallory", 3, 30, 0.0)
    alice = core.offer(chunks[2][0], "alice", 4, 30, 0.0)

    assert isinstance(mallory, Store) and mallory.key == ("mallory", "upd-4") and mallory.new_set
    assert isinstance(alice, Complete) and alice.tags == (1, 2, 4)


def test_a_second_copy_of_a_chunk_is_held_but_not_stored() -> None:
    chunks = split(b"d" * 90, 30, "upd-5")
    core = Reassembly(LIMITS)
    core.offer(chunks[0][0], "alice", 7, 30, 0.0)

    again = core.offer(chunks[0][0], "alice", 9, 30, 0.0)

    assert isinstance(again, Redundant)
    assert core.held_tags() == 2 and core.lowest_tag() == 7


@pytest.mark.parametrize(
    ("limits", "length", "reason"),
    [
        (ChunkLimits(max_total_bytes=89, max_chunk_bytes=1 << 16), 30, "too-large"),
        (ChunkLimits(max_total_bytes=1 << 20, max_chunk_bytes=29), 30, "bad-chunk"),
        (LIMITS, 29, "chunk-length"),
        (
            ChunkLimits(max_total_bytes=1 << 20, max_chunk_bytes=1 << 16, max_held_bytes=89),
            30,
            "too-many-sets",
        ),
    ],
)
def test_a_chunk_beyond_a_limit_is_refused(limits: ChunkLimits, length: int, reason: str) -> None:
    (header, _), *_ = split(b"e" * 90, 30, "upd-6")

    verdict = Reassembly(limits).offer(header, "alice", 1, length, 0.0)

    assert isinstance(verdict, Refused) and verdict.reason == reason


def test_open_sets_are_bounded_and_the_stalest_is_given_up_first() -> None:
    core = Reassembly(
        ChunkLimits(max_total_bytes=1 << 20, max_chunk_bytes=1 << 16, max_open_sets=2)
    )
    firsts = [split(bytes([i]) * 90, 30, f"upd-{i}x")[0][0] for i in range(3)]
    core.offer(firsts[0], "alice", 1, 30, now=5.0)
    core.offer(firsts[1], "bob", 2, 30, now=1.0)

    third = core.offer(firsts[2], "carol", 3, 30, now=6.0)
    stalest = core.abandon_stalest()

    assert isinstance(third, Refused) and third.reason == "too-many-sets"
    assert stalest is not None and stalest.key == ("bob", "upd-1x") and stalest.tags == (2,)
    assert core.lowest_tag() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {INDEX_HEADER: 0},  # some chunk headers, not all
        {**split(b"f" * 90, 30, "s")[0][0].amqp_headers(), INDEX_HEADER: 3},  # index >= count
        {**split(b"f" * 90, 30, "s")[0][0].amqp_headers(), INDEX_HEADER: "0"},  # not an int
        {
            **split(b"f" * 90, 30, "s")[0][0].amqp_headers(),
            TOTAL_HEADER: 10,
            COUNT_HEADER: 6,
        },  # 6 x 2 bytes: last empty
    ],
)
def test_malformed_chunk_headers_are_a_bad_chunk(headers: dict[str, object]) -> None:
    with pytest.raises(DecodeError) as info:
        read_chunk_header(headers)
    assert info.value.reason == "bad-chunk"


def test_chunk_headers_as_bytes_are_read_as_text_and_none_means_whole() -> None:
    header = split(b"g" * 90, 30, "s")[1][0]
    raw = {k: v.encode() if isinstance(v, str) else v for k, v in header.amqp_headers().items()}

    assert read_chunk_header(raw) == header
    assert read_chunk_header({"fedmq-schema": 2}) is None


def _two(body: bytes) -> list[ChunkHeader]:
    """Two chunks for a body the drawn chunk size did not split (so every case reassembles)."""
    digest = hashlib.sha256(body).hexdigest()
    n = len(body)
    return [
        ChunkHeader(set_id="upd-1", index=i, count=2, total_bytes=n, sha256=digest) for i in (0, 1)
    ]
