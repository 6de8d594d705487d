"""AMQP field tables decoded without trusting the sender (installed into pika by ``AmqpSession``).

pika decodes a message's header table while it reads the socket, so a value it
cannot represent (a timestamp past year 9999, a field type it does not know)
raises inside its I/O loop and drops the whole connection; every unacked
delivery then goes back to the queue and is charged a delivery, over and over.
Decoded here instead, such a value becomes an ``Undecodable`` marker and the
message arrives like any other, for ``broker.delivery`` to refuse on its own.
Floats are decoded as floats (pika 1.x truncates them to integers) and encoded
as doubles (pika 1.x cannot encode them at all, so a dead-lettered copy of a
message with a float header could not be sent).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pika.data

#: The key under which a table that could not be read to its end records why.
UNREADABLE_REST = "\x00unreadable"
#: The key under which a table records a key it saw twice (the later value would hide the first).
REPEATED_KEY = "\x00repeated"

_PIKA_DECODE_VALUE = pika.data.decode_value
_PIKA_ENCODE_VALUE = pika.data.encode_value
_FLOATS = {b"f": ">f", b"d": ">d"}


@dataclass(frozen=True)
class Undecodable:
    """A field value that was on the wire but has no faithful Python form."""

    kind: str
    reason: str

    def describe(self) -> str:
        return f"<undecodable {self.kind!r} field: {self.reason}>"


def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    """One field value, as pika's own decoder would, except that no value raises."""
    kind = encoded[offset : offset + 1]
    if kind == b"T":
        seconds = struct.unpack_from(">Q", encoded, offset + 1)[0]
        try:
            return datetime.fromtimestamp(seconds, timezone.utc), offset + 9
        except (ValueError, OverflowError, OSError):
            return Undecodable("T", f"timestamp {seconds} is out of range"), offset + 9
    if kind in _FLOATS:
        fmt = _FLOATS[kind]
        return struct.unpack_from(fmt, encoded, offset + 1)[0], offset + 1 + struct.calcsize(fmt)
    value, end = _PIKA_DECODE_VALUE(encoded, offset)
    return value, int(end)


def decode_table(encoded: bytes, offset: int) -> tuple[dict[Any, Any], int]:
    """A field table; what cannot be read (an unknown type, a value past the table's end) is
    recorded under ``UNREADABLE_REST`` and skipped (the table's length says where it ends), a
    repeated key under ``REPEATED_KEY``.
    """
    length = struct.unpack_from(">I", encoded, offset)[0]
    offset += 4
    end = offset + length
    table: dict[Any, Any] = {}
    try:
        while offset < end:
            key, offset = pika.data.decode_short_string(encoded, offset)
            value, offset = decode_value(encoded, offset)
            if key in table:
                table[REPEATED_KEY] = Undecodable("F", f"key {key!r} appears more than once")
            table[key] = value
        if offset > end:
            raise ValueError("a value runs past the end of its table")
    except Exception as exc:  # any failure at all: the rest of this table is unreadable
        table[UNREADABLE_REST] = Undecodable("F", f"{type(exc).__name__}: {exc}"[:200])
    return table, end


def encode_value(pieces: list[bytes], value: Any) -> int:
    """pika's encoder, plus floats (as doubles; ``broker.wire_properties`` keeps them finite)."""
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    return int(_PIKA_ENCODE_VALUE(pieces, value))


def install() -> None:
    """Make pika decode every field table (headers, nested tables, arrays) with these functions."""
    pika.data.decode_value = decode_value
    pika.data.decode_table = decode_table
    pika.data.encode_value = encode_value
