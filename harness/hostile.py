"""Hostile messages for the results path, as hypothesis strategies.

Each draws a ``Hostile``: a body, the AMQP properties it is sent with, its
kind, and the dead-letter reasons the aggregator may give it (empty set:
any reason will do, e.g. for random bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
from hypothesis import strategies as st

from schemas.codec import CONTENT_TYPE, pack_frame
from schemas.messages import SCHEMA_VERSION
from training.weights import Weights


@dataclass(frozen=True)
class Hostile:
    kind: str
    body: bytes = field(repr=False)
    expected: frozenset[str] = frozenset()
    content_type: str | None = CONTENT_TYPE
    properties: dict[str, Any] = field(default_factory=dict)


def update_fields(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        schema_version=SCHEMA_VERSION,
        kind="update",
        update_id="hostile-update",
        worker_id="intruder",
        base_version=0,
        num_examples=10,
        update_kind="weights",
        train_seconds=0.1,
        metrics={},
    )
    fields.update(over)
    return fields


def raw_frame(header: dict[str, Any], payload: bytes) -> bytes:
    """A well-framed body with any header at all (no validation on our side)."""
    body: bytes = msgpack.packb(
        [msgpack.packb(header, use_bin_type=True), payload], use_bin_type=True
    )
    return body


#: What msgpack can carry.
WIRE_INTS = st.integers(-(2**63), 2**64 - 1)


def _wrong_value(name: str) -> st.SearchStrategy[Any]:
    wrong_for_int = st.one_of(
        st.text(max_size=8),
        st.floats(allow_nan=False),
        st.lists(WIRE_INTS, max_size=3),
        st.none(),
        st.booleans(),
    )
    wrong_for_str = st.one_of(
        WIRE_INTS, st.lists(st.text(max_size=3), max_size=3), st.none(), st.binary(max_size=8)
    )
    return {
        "base_version": wrong_for_int,
        "num_examples": wrong_for_int,
        "train_seconds": st.one_of(st.text(max_size=4), st.none()),
        "update_id": wrong_for_str,
        "worker_id": wrong_for_str,
        "update_kind": st.one_of(WIRE_INTS, st.sampled_from(["both", ""])),
        "metrics": st.one_of(st.lists(WIRE_INTS, max_size=3), WIRE_INTS, st.text(max_size=5)),
    }[name]


def hostile_messages(model: Weights, max_bytes: int) -> st.SearchStrategy[Hostile]:
    """Every kind of hostile message against a model shaped like ``model``.

    Bodies go up to 2 x ``max_bytes``.
    """
    good = {name: np.zeros(a.shape, a.dtype) for name, a in model.items()}
    return st.one_of(
        *_framing_attacks(pack_frame(update_fields(), good), max_bytes),
        *_field_attacks(good),
        *_array_attacks(good),
    )


def _framing_attacks(valid: bytes, max_bytes: int) -> list[st.SearchStrategy[Hostile]]:
    """Bodies that are not a frame, are cut short, are too big, or come with the wrong type."""
    random_bytes = st.binary(max_size=4096).map(lambda b: Hostile("random-bytes", b))
    truncated = st.integers(0, len(valid) - 1).map(
        lambda n: Hostile("truncated", valid[:n], frozenset({"framing"}))
    )
    content_type = (
        st.one_of(st.text(max_size=30), st.none())
        .filter(lambda ct: ct != CONTENT_TYPE)
        .map(
            lambda ct: Hostile("content-type", valid, frozenset({"content-type"}), content_type=ct)
        )
    )
    oversize = st.integers(max_bytes + 1, 2 * max_bytes).map(
        lambda n: Hostile("oversize", bytes(n), frozenset({"too-large"}))
    )
    return [random_bytes, truncated, content_type, oversize]


def _message(kind: str, fields: dict[str, Any], good: Weights, *reasons: str) -> Hostile:
    return Hostile(kind, pack_frame(update_fields(**fields), good), frozenset(reasons))


def _field_attacks(good: Weights) -> list[st.SearchStrategy[Hostile]]:
    """Well-framed updates whose header fields are of the wrong type, out of range or bloated."""
    fields = [
        "base_version", "num_examples", "train_seconds", "update_id", "worker_id",
        "update_kind", "metrics",
    ]  # fmt: skip
    wrong_types = st.sampled_from(fields).flatmap(
        lambda name: _wrong_value(name).map(
            lambda v: _message("wrong-types", {name: v}, good, "invalid-message")
        )
    )
    negative = st.integers(-(2**63), 0).map(
        lambda n: _message("negative-count", {"num_examples": n}, good, "invalid-message")
    )
    future = st.integers(10**7, 2**62).map(
        lambda base: _message("future-base", {"base_version": base}, good, "future-version")
    )
    bloated = st.integers(10_000, 60_000).map(
        lambda n: _message(
            "bloated-header", {"metrics": {"x": list(range(n))}}, good, "invalid-message"
        )
    )
    request = {"schema_version": SCHEMA_VERSION, "kind": "request", "worker_id": "intruder"}
    wrong_kind = st.integers(0, 2**62).map(
        lambda v: Hostile(
            "wrong-kind",
            pack_frame({**request, "have_version": v}, None),
            frozenset({"unexpected-kind"}),
        )
    )
    return [wrong_types, negative, future, bloated, wrong_kind]


def _array_attacks(good: Weights) -> list[st.SearchStrategy[Hostile]]:
    """Updates whose arrays lie about their size or have the wrong shape, dtype or values."""
    names = sorted(good)

    def with_arrays(kind: str, *reasons: str) -> Callable[[tuple[str, np.ndarray]], Hostile]:
        return lambda item: Hostile(
            kind, pack_frame(update_fields(), {**good, item[0]: item[1]}), frozenset(reasons)
        )

    def poisoned(name: str) -> st.SearchStrategy[tuple[str, np.ndarray]]:
        values = st.sampled_from([np.nan, np.inf, -np.inf])
        return st.tuples(st.integers(0, good[name].size - 1), values).map(
            lambda iv: (name, _with_value(good[name], iv[0], iv[1]))
        )

    dtypes = [
        d
        for d in ("float16", "float64", "int32", "uint8", "bool")
        if d != str(good[names[0]].dtype)
    ]
    huge_shape = st.tuples(
        st.sampled_from(names), st.lists(st.integers(2**20, 2**47), min_size=1, max_size=4)
    ).map(lambda ns: _lying_shape(ns[0], ns[1]))
    non_finite = (
        st.sampled_from(names).flatmap(poisoned).map(with_arrays("non-finite", "non-finite"))
    )
    wrong_dtype = (
        st.tuples(st.sampled_from(names), st.sampled_from(dtypes))
        .map(lambda nd: (nd[0], good[nd[0]].astype(nd[1])))
        .map(with_arrays("wrong-dtype", "dtype-mismatch"))
    )
    wrong_shape = (
        st.tuples(st.sampled_from(names), st.lists(st.integers(0, 70), min_size=0, max_size=3))
        .filter(lambda ns: tuple(ns[1]) != good[ns[0]].shape)
        .map(lambda ns: (ns[0], np.zeros(ns[1], good[ns[0]].dtype)))
        .map(with_arrays("wrong-shape", "shape-mismatch", "too-large"))
    )  # a big enough shape is oversize first
    return [huge_shape, non_finite, wrong_dtype, wrong_shape]


def _lying_shape(name: str, shape: list[int]) -> Hostile:
    """An array spec whose shape claims far more bytes than the payload holds."""
    spec = {"name": name, "dtype": "float32", "shape": shape, "offset": 0}
    return Hostile(
        "huge-shape",
        raw_frame({**update_fields(), "arrays": [spec]}, bytes(64)),
        frozenset({"byte-length", "bad-shape"}),
    )


def _with_value(array: np.ndarray, index: int, value: float) -> np.ndarray:
    out: np.ndarray = array.copy()
    out.reshape(-1)[index] = value
    return out
