"""pika's receive path as tuned: a body assembled in one buffer, the bytes pika would join."""

from __future__ import annotations

from typing import Any

import pika.channel
import pytest
from pika import exceptions, frame, spec

from broker.tuning import assemble_in_place, tune_pika_receive


def frames(body: bytes, frame_size: int) -> list[frame.Frame]:
    method = frame.Method(1, spec.Basic.Deliver("ctag", 1, False, "x", "k"))
    header = frame.Header(1, len(body), spec.BasicProperties())
    pieces = [body[i : i + frame_size] for i in range(0, len(body), frame_size)]
    return [method, header, *(frame.Body(1, p) for p in pieces)]


def assembled(body: bytes, frame_size: int) -> list[Any]:
    assembler = pika.channel.ContentFrameAssembler()
    return [assembler.process(f) for f in frames(body, frame_size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 100_003])
def test_a_body_is_assembled_whole_and_read_only(size: int) -> None:
    tune_pika_receive()
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)

    *pending, (_, header, got) = assembled(body, 4096)

    assert all(p is None for p in pending)
    assert isinstance(got, memoryview) and got.readonly
    assert bytes(got) == body and header.body_size == size


def test_two_bodies_in_a_row_do_not_share_a_buffer() -> None:
    tune_pika_receive()
    assembler = pika.channel.ContentFrameAssembler()
    first = [assembler.process(f) for f in frames(b"a" * 10, 4)][-1]
    second = [assembler.process(f) for f in frames(b"b" * 10, 4)][-1]

    assert first is not None and second is not None
    assert bytes(first[2]) == b"a" * 10 and bytes(second[2]) == b"b" * 10


def test_a_body_longer_than_its_header_said_is_refused() -> None:
    assembler = pika.channel.ContentFrameAssembler()
    assembler.process(frame.Method(1, spec.Basic.Deliver("ctag", 1, False, "x", "k")))
    assembler.process(frame.Header(1, 4, spec.BasicProperties()))

    with pytest.raises(exceptions.BodyTooLongError):
        assemble_in_place(assembler, frame.Body(1, b"12345"))
