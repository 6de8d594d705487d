"""AMQP field values that no honest client would send, for hostile-input tests.

pika refuses to encode a value it could not decode (a timestamp past year
9999, a string that is not UTF-8 where a short string belongs), so a hostile
publisher is simulated by letting pika's encoder pass ``RawField`` bytes
through untouched. Test support only: nothing in the services imports this.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika.data


@dataclass(frozen=True)
class RawField:
    """One field value as it goes on the wire: its type octet and its encoded payload."""

    kind: bytes
    payload: bytes


def raw_timestamp(seconds: int) -> RawField:
    """A timestamp field of any 64-bit value (pika decodes it as a datetime, up to year 9999)."""
    return RawField(b"T", struct.pack(">Q", seconds))


def raw_long_string(data: bytes) -> RawField:
    """A long-string field holding any bytes at all (UTF-8 or not)."""
    return RawField(b"S", struct.pack(">I", len(data)) + data)


@contextlib.contextmanager
def raw_fields() -> Iterator[None]:
    """While inside, header values may be ``RawField`` (in this process only)."""
    encode = pika.data.encode_value

    def encode_raw(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, RawField):
            pieces.append(value.kind + value.payload)
            return 1 + len(value.payload)
        return int(encode(pieces, value))

    pika.data.encode_value = encode_raw
    try:
        yield
    finally:
        pika.data.encode_value = encode
