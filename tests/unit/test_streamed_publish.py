"""A chunked model version is cut from the model's arrays as it is sent: no encoded copy of the
model is built, held between publishes, or sent wrong."""

from __future__ import annotations

import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from aggregator.shell.publisher import Publisher
from broker.delivery import Properties
from broker.names import Names
from schemas.chunks import body_digest, read_chunk_header
from schemas.codec import Limits, decode
from schemas.messages import ModelVersion, TrainConfig

CHUNK = 1 << 20
FLOATS = 4_000_000  # 16 MB: sixteen chunks
MODEL_BYTES = FLOATS * 4


@dataclass
class ChunkSink:
    """Stands in for the session: keeps each chunk's headers and digest, and the traced memory
    at the moment of each publish (the body is dropped, as the broker would take it)."""

    settings: Any = field(default_factory=lambda: SimpleNamespace(chunk_bytes=CHUNK))
    username: str = "fed-aggregator"
    keep_bodies: bool = False
    headers: list[Mapping[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    traced_at_publish: list[int] = field(default_factory=list)

    def publish(self, exchange: str, key: str, body: bytes, props: Properties, **_: Any) -> None:
        self.traced_at_publish.append(tracemalloc.get_traced_memory()[0])
        self.headers.append(props.headers)
        if self.keep_bodies:
            self.bodies.append(bytes(body))


def publisher(sink: ChunkSink, weights: dict[str, np.ndarray]) -> Publisher:
    state = SimpleNamespace(run_id="run-1", version=3, finished=False, weights=weights)
    return Publisher(
        sink,  # type: ignore[arg-type]
        Names("fed"),
        SimpleNamespace(state=state),  # type: ignore[arg-type]
        audit=None,  # type: ignore[arg-type]
        observer=None,  # type: ignore[arg-type]
        config=TrainConfig,
        max_message_bytes=256 << 20,
        audit_digests=False,
    )


def model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "a": rng.standard_normal(FLOATS // 2).astype(np.float32),
        "b": rng.standard_normal((FLOATS // 2000, 1000)).astype(np.float32),
        "bias": rng.standard_normal(3).astype(np.float32),
    }


def traced_send(sink: ChunkSink, weights: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Send the version to a worker under tracemalloc: the peak of memory allocated meanwhile, the
    most held when a chunk was published, and what is still held once it is sent (bytes)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        source = publisher(sink, weights)  # alive until measured: it keeps what it caches
        source.send_to_worker("w1")
        held_after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, max(sink.traced_at_publish) - base, held_after - base


def test_a_chunked_version_is_sent_without_an_encoded_copy_of_the_model() -> None:
    sink = ChunkSink()

    peak, _, _ = traced_send(sink, model())

    assert len(sink.headers) == 16  # 16 MB and a header in chunks of 1 MiB
    assert peak < 3 * CHUNK, f"{peak} bytes traced while publishing a {MODEL_BYTES}-byte model"


def test_no_encoded_copy_of_the_model_is_held_between_chunks_or_after_them() -> None:
    sink = ChunkSink()

    _, held_during, held_after = traced_send(sink, model())

    assert held_during < 2 * CHUNK, f"{held_during} bytes held while a chunk was being published"
    assert held_after < CHUNK, f"{held_after} bytes kept after the version was sent"


def test_the_streamed_chunks_reassemble_to_the_version_their_headers_name() -> None:
    weights = model()
    sink = ChunkSink(keep_bodies=True)

    publisher(sink, weights).send_to_worker("w1")

    headers = [read_chunk_header(h) for h in sink.headers]
    assert [h.index for h in headers if h] == list(range(16))
    body = b"".join(sink.bodies)
    first = headers[0]
    assert first is not None
    assert len(body) == first.total_bytes and body_digest(body) == first.sha256
    assert all(len(b) == h.length for b, h in zip(sink.bodies, headers, strict=True) if h)
    version = decode(body, ModelVersion, limits=Limits())
    assert version.version == 3 and version.run_id == "run-1"
    for name, array in weights.items():
        np.testing.assert_array_equal(version.arrays[name], array)
