"""Received AMQP properties checked like any other input: what cannot be trusted becomes a fault.

``broker.fields`` makes sure pika delivers every message; here each property
that is not what the protocol says (a short string that is not UTF-8, a
header pika could not decode, a header key that is not text, a float that is
not finite) is replaced by a safe stand-in and named in ``faults``, so the
consumer can refuse that one message with a reason and still republish it
(body and all) to the dead-letter queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from broker.fields import Undecodable

#: AMQP short strings (and so header keys) are at most 255 bytes.
SHORT_STRING_BYTES = 255


def clean_text(value: object, where: str, faults: list[str]) -> str | None:
    """A short-string property as text; bytes (not UTF-8) are replaced and named as a fault."""
    if value is None or isinstance(value, str):
        return value
    faults.append(f"{where} is not UTF-8 text")
    raw = value if isinstance(value, bytes) else repr(value).encode()
    return _fit(raw.decode("utf-8", "replace"))


def clean_int(value: object, where: str, faults: list[str]) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    faults.append(f"{where} is not an integer")
    return None


def clean_table(table: Mapping[Any, Any], where: str, faults: list[str]) -> dict[str, Any]:
    """A header table with every key text and every value one pika can encode again."""
    clean: dict[str, Any] = {}
    for key, value in table.items():
        name = clean_text(key, f"{where} key {key!r}", faults) or ""
        clean[name] = _clean_value(value, f"{where}.{name}", faults)
    return clean


def _clean_value(value: Any, where: str, faults: list[str]) -> Any:
    if isinstance(value, Undecodable):
        faults.append(f"{where}: {value.reason}")
        return value.describe()
    if isinstance(value, float) and not math.isfinite(value):
        faults.append(f"{where}: {value} is not finite")
        return repr(value)
    if isinstance(value, Mapping):
        return clean_table(value, where, faults)
    if isinstance(value, list):
        return [_clean_value(v, f"{where}[{i}]", faults) for i, v in enumerate(value)]
    return value


def _fit(text: str) -> str:
    """Cut ``text`` to what fits in a short string (replacement characters take 3 bytes)."""
    while len(text.encode()) > SHORT_STRING_BYTES:
        text = text[:-1]
    return text
