"""Hypothesis strategies for AMQP field values and message properties, drawn as wire bytes.

Every field type of AMQP 0-9-1 (with RabbitMQ's errata) is drawn over its
whole range, plus what a hostile client can put on the wire instead: a
timestamp no calendar holds, a float that is not finite, a key or string that
is not UTF-8, a type octet nobody defines. Each draw says whether a sound
receiver must call it faulty (``sound``), which the tests check
``broker.wire_properties`` against.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import strategies as st
from pika.spec import BasicProperties

#: The last second datetime can hold (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253_402_300_799
#: Type octets with a fixed-size payload, and its struct format.
FIXED = {
    b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"U": ">h", b"u": ">H",
    b"I": ">i", b"i": ">I", b"l": ">q", b"L": ">q",
}  # fmt: skip
UNKNOWN_KINDS = sorted(set(b"ZzYy!#%&0") - set(b"tbBsUuIilLfdDSxATFV"))


@dataclass(frozen=True)
class Wire:
    """Encoded bytes, and whether a receiver may accept them without a fault."""

    data: bytes
    sound: bool = True


def _join(parts: list[Wire]) -> Wire:
    return Wire(b"".join(p.data for p in parts), all(p.sound for p in parts))


def _fixed() -> st.SearchStrategy[Wire]:
    def draw(kind: bytes) -> st.SearchStrategy[Wire]:
        fmt = FIXED[kind]
        bits = struct.calcsize(fmt) * 8
        low, high = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt[1].islower() else (0, 2**bits - 1)
        )
        return st.integers(low, high).map(lambda v: Wire(kind + struct.pack(fmt, v)))

    return st.sampled_from(sorted(FIXED)).flatmap(draw)


def _floats() -> st.SearchStrategy[Wire]:
    def wire(kind: bytes, value: float) -> Wire:
        fmt = ">f" if kind == b"f" else ">d"
        finite = value == value and abs(value) != float("inf")
        return Wire(kind + struct.pack(fmt, value), finite)

    single = st.floats(width=32).map(lambda v: wire(b"f", v))
    double = st.floats().map(lambda v: wire(b"d", v))
    return st.one_of(single, double)


def _strings() -> st.SearchStrategy[Wire]:
    """Long strings (UTF-8 or any bytes: both are fine as values) and byte arrays."""
    data = st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=40))
    long_string = data.map(lambda b: Wire(b"S" + struct.pack(">I", len(b)) + b))
    byte_array = st.binary(max_size=40).map(lambda b: Wire(b"x" + struct.pack(">I", len(b)) + b))
    return st.one_of(long_string, byte_array)


def _scalars() -> st.SearchStrategy[Wire]:
    timestamp = st.integers(0, 2**64 - 1).map(
        lambda s: Wire(b"T" + struct.pack(">Q", s), s <= MAX_TIMESTAMP)
    )
    decimal = st.tuples(st.integers(0, 255), st.integers(-(2**31), 2**31 - 1)).map(
        lambda dv: Wire(b"D" + struct.pack(">Bi", *dv))
    )
    unknown = st.tuples(st.sampled_from(UNKNOWN_KINDS), st.binary(max_size=8)).map(
        lambda kb: Wire(bytes([kb[0]]) + kb[1], False)
    )
    void = st.just(Wire(b"V"))
    return st.one_of(_fixed(), _floats(), _strings(), timestamp, decimal, void, unknown)


def short_string(*, text_required: bool) -> st.SearchStrategy[Wire]:
    """A short string: text, or (a fault where text is required) bytes that are not UTF-8."""
    text = st.text(max_size=30).map(str.encode).filter(lambda b: len(b) <= 255).map(Wire)
    raw = st.binary(min_size=1, max_size=60).map(
        lambda b: Wire(b, _is_utf8(b) or not text_required)
    )
    return st.one_of(text, raw).map(lambda w: Wire(bytes([len(w.data)]) + w.data, w.sound))


def field_values(max_leaves: int = 12) -> st.SearchStrategy[Wire]:
    """Any field value, nested arrays and tables included."""
    return st.recursive(
        _scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: _framed(b"A", _join(items))),
            _tables(inner),
        ),
        max_leaves=max_leaves,
    )


def _tables(values: st.SearchStrategy[Wire]) -> st.SearchStrategy[Wire]:
    """Tables of up to 5 entries; a key that is not text, or appears twice, is a fault."""
    entry = st.tuples(short_string(text_required=True), values)

    def table(entries: list[tuple[Wire, Wire]]) -> Wire:
        keys = [key.data for key, _ in entries]
        body = _join([w for kv in entries for w in kv])
        unique = len(set(keys)) == len(keys)
        return _framed(b"F", Wire(body.data, body.sound and unique))

    return st.lists(entry, max_size=5).map(table)


def field_tables() -> st.SearchStrategy[Wire]:
    """A header table as it follows its type octet: a 32-bit length, then the entries."""
    return _tables(field_values()).map(lambda w: Wire(w.data[1:], w.sound))


def _framed(kind: bytes, body: Wire) -> Wire:
    return Wire(kind + struct.pack(">I", len(body.data)) + body.data, body.sound)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


#: The content header's properties in wire order; True for those fedmq reads as text.
PROPERTIES: tuple[tuple[int, str, bool], ...] = (
    (BasicProperties.FLAG_CONTENT_TYPE, "shortstr", True),
    (BasicProperties.FLAG_CONTENT_ENCODING, "shortstr", False),
    (BasicProperties.FLAG_HEADERS, "table", False),
    (BasicProperties.FLAG_DELIVERY_MODE, "octet", False),
    (BasicProperties.FLAG_PRIORITY, "octet", False),
    (BasicProperties.FLAG_CORRELATION_ID, "shortstr", False),
    (BasicProperties.FLAG_REPLY_TO, "shortstr", False),
    (BasicProperties.FLAG_EXPIRATION, "shortstr", False),
    (BasicProperties.FLAG_MESSAGE_ID, "shortstr", True),
    (BasicProperties.FLAG_TIMESTAMP, "longlong", False),
    (BasicProperties.FLAG_TYPE, "shortstr", True),
    (BasicProperties.FLAG_USER_ID, "shortstr", True),
    (BasicProperties.FLAG_APP_ID, "shortstr", False),
    (BasicProperties.FLAG_CLUSTER_ID, "shortstr", False),
)


def _property(kind: str, read_as_text: bool) -> st.SearchStrategy[Wire]:
    if kind == "shortstr":
        return short_string(text_required=read_as_text)
    if kind == "table":
        return field_tables()
    if kind == "octet":
        return st.integers(0, 255).map(lambda v: Wire(bytes([v])))
    return st.integers(0, 2**64 - 1).map(lambda v: Wire(struct.pack(">Q", v)))


def content_properties() -> st.SearchStrategy[Wire]:
    """A content header's property list (flags, then the present properties), as pika decodes
    it.
    """
    present = st.lists(st.booleans(), min_size=len(PROPERTIES), max_size=len(PROPERTIES))

    def draw(flags: list[bool]) -> st.SearchStrategy[Wire]:
        chosen = [p for p, on in zip(PROPERTIES, flags, strict=True) if on]
        word = sum(flag for flag, _, _ in chosen)
        parts = st.tuples(*(_property(kind, text) for _, kind, text in chosen))
        return parts.map(lambda ws: _join([Wire(struct.pack(">H", word)), *ws]))

    return present.flatmap(draw)
