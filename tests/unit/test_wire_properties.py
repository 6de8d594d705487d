"""Received AMQP properties and headers are fuzzed over every field type (hypothesis).

pika decodes them (with ``broker.fields`` installed) and ``broker.delivery``
checks them: decoding never raises, a fault is reported exactly when the draw
was hostile, and what is left can always be republished to the dead-letter
queue and read back unchanged.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

import pika.data
import pytest
from hypothesis import HealthCheck, given, settings
from pika.spec import BasicProperties

from broker import fields
from broker.delivery import Properties, from_pika, to_pika
from broker.properties import REASON_HEADER, dead_letter_properties
from harness.amqp_wire import Wire, content_properties, field_tables

#: Examples per fuzz test (each draws a whole table or property list of many fields).
EXAMPLES = 600
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RUNS: dict[str, int] = {"headers": 0, "properties": 0}


@pytest.fixture(scope="module", autouse=True)
def tolerant_decoding() -> None:
    fields.install()


def decoded(wire: bytes) -> Properties:
    props = BasicProperties()
    props.decode(wire)
    return from_pika(props)


def reencoded(props: Properties) -> Properties:
    """What ``props`` read as once they have been sent again (every value survives the trip)."""
    return decoded(b"".join(to_pika(props).encode()))


def republished(props: Properties) -> Properties:
    """What a dead-lettered copy of ``props`` reads as once it is back off the wire."""
    return reencoded(dead_letter_properties(props, "bad-properties", "; ".join(props.faults)))


def headers_only(table: bytes) -> bytes:
    return struct.pack(">H", BasicProperties.FLAG_HEADERS) + table


@FUZZ
@given(field_tables())
def test_any_header_table_decodes_is_judged_and_can_be_dead_lettered(table: Wire) -> None:
    RUNS["headers"] += 1
    props = decoded(headers_only(table.data))
    assert (not props.faults) == table.sound, props.faults
    again, dead = reencoded(props), republished(props)
    assert not again.faults and again.headers == props.headers
    assert not dead.faults and dead.headers[REASON_HEADER] == "bad-properties"


@FUZZ
@given(content_properties())
def test_any_property_list_decodes_is_judged_and_can_be_dead_lettered(wire: Wire) -> None:
    RUNS["properties"] += 1
    props = decoded(wire.data)
    assert (not props.faults) == wire.sound, props.faults
    again, dead = reencoded(props), republished(props)
    assert not again.faults and again.headers == props.headers
    assert not dead.faults and dead.headers[REASON_HEADER] == "bad-properties"
    assert (dead.content_type, dead.message_id, dead.type) == (
        props.content_type,
        props.message_id,
        props.type,
    )


def test_the_fuzzers_ran_their_examples() -> None:
    """Run after the two above (file order): the counts the closing note quotes."""
    print(f"fuzzed: {RUNS}")
    assert RUNS["headers"] >= EXAMPLES and RUNS["properties"] >= EXAMPLES, RUNS


def test_a_timestamp_past_year_9999_is_a_fault_not_a_lost_connection() -> None:
    table = b"\x07sent-atT" + struct.pack(">Q", 2**63)
    props = decoded(headers_only(struct.pack(">I", len(table)) + table))
    assert props.faults == ("headers.sent-at: timestamp 9223372036854775808 is out of range",)
    assert props.headers["sent-at"].startswith("<undecodable 'T' field")


def test_an_unknown_field_type_costs_the_rest_of_its_table_only() -> None:
    inner = b"\x01aZ\x00\x00"  # 'Z' is no AMQP type: its length is unknown
    table = b"\x01xF" + struct.pack(">I", len(inner)) + inner + b"\x01yt\x01"
    props = decoded(headers_only(struct.pack(">I", len(table)) + table))
    assert props.headers["y"] is True  # the outer table reads on past the bad inner one
    assert len(props.faults) == 1 and props.faults[0].startswith("headers.x.\x00unreadable")


def test_floats_decode_as_floats_and_a_good_timestamp_as_a_datetime() -> None:
    table = b"\x01fd" + struct.pack(">d", 0.25) + b"\x01tT" + struct.pack(">Q", 86_400)
    props = decoded(headers_only(struct.pack(">I", len(table)) + table))
    assert props.headers == {"f": 0.25, "t": datetime(1970, 1, 2, tzinfo=timezone.utc)}
    assert not props.faults


def test_pika_itself_loses_the_connection_on_such_a_timestamp() -> None:
    """Why ``broker.fields`` exists: pika's own decoder raises (inside its I/O loop)."""
    with pytest.raises((ValueError, OverflowError, OSError)):
        fields._PIKA_DECODE_VALUE(b"T" + struct.pack(">Q", 2**63), 0)
    assert pika.data.decode_table is fields.decode_table
