"""A body read from its pieces is the body joined: the same bytes, chunks, headers and digest."""

from __future__ import annotations

import random

import numpy as np
import pytest

from broker import chunked
from schemas.chunks import body_digest
from schemas.codec import encode, encode_parts
from schemas.messages import ModelVersion
from schemas.pieces import Pieces


def pieces_of(body: bytes, seed: int) -> list[bytes | memoryview]:
    """``body`` cut at random places, some pieces empty, some views."""
    rng = random.Random(seed)
    cuts = sorted(rng.randrange(len(body) + 1) for _ in range(12))
    bounds = [0, *cuts, len(body)]
    view = memoryview(body)
    spans = [view[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return [span if i % 2 else bytes(span) for i, span in enumerate(spans)]


def cut(body: bytes | Pieces) -> chunked.Outgoing:
    return chunked.prepare(body, chunk_bytes=10_000, max_message_bytes=1 << 20, set_id="r.v2")


@pytest.mark.parametrize("seed", range(5))
def test_any_range_of_the_pieces_reads_as_that_range_of_the_body(seed: int) -> None:
    body = random.Random(seed).randbytes(1000)
    pieces = Pieces(pieces_of(body, seed))
    rng = random.Random(seed + 100)

    ranges = [sorted((rng.randrange(1001), rng.randrange(1001))) for _ in range(200)]

    assert len(pieces) == len(body) and pieces.digest() == body_digest(body)
    assert all(pieces.read(a, b) == body[a:b] for a, b in ranges)
    assert pieces.join() == body


def test_a_range_outside_the_body_is_refused() -> None:
    pieces = Pieces([b"abc", b"def"])

    with pytest.raises(ValueError, match="outside"):
        pieces.read(2, 7)


def test_a_model_chunked_from_its_pieces_goes_on_the_wire_exactly_as_its_encoded_body() -> None:
    arrays: dict[str, np.ndarray] = {
        "W": np.arange(30_000, dtype=np.float32).reshape(300, 100),
        "b": np.ones(7, np.float64),
        "steps": np.array(5, np.int64),
    }
    message = ModelVersion(run_id="r", version=2, created_at=1.5, arrays=arrays)

    streamed = cut(Pieces(encode_parts(message)))
    joined = cut(encode(message))

    assert streamed.headers == joined.headers and len(streamed.headers) == 13
    assert [streamed.chunk(h) for h in streamed.headers] == [
        joined.chunk(h) for h in joined.headers
    ]


def test_a_body_that_fits_one_message_is_joined_and_sent_whole() -> None:
    message = ModelVersion(run_id="r", version=1, created_at=0.0, arrays={"w": np.zeros(10)})

    out = chunked.prepare(
        Pieces(encode_parts(message)), chunk_bytes=1 << 20, max_message_bytes=1 << 20, set_id="s"
    )

    assert out.headers == [] and out.whole == encode(message) and out.parts == 1
