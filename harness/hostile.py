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
    """Every kind of hostile message against a model shaped like ``model``, with bodies up to 2 x ``max_bytes``."""
    good = {name: np.zeros(a.shape, a.dtype) for name, a in model.items()}
    valid = pack_frame(update_fields(), good)
    names = sorted(model)

    def with_arrays(kind: str, *reasons: str) -> Callable[[tuple[str, np.ndarray]], Hostile]:
        return lambda item: Hostile(
            kind, pack_frame(update_fields(), {**good, item[0]: item[1]}), frozenset(reasons)
        )

    def poisoned(name: str) -> st.SearchStrategy[tuple[str, np.ndarray]]:
        size = good[name].size
        return st.tuples(st.integers(0, size - 1), st.sampled_from([np.nan, np.inf, -np.inf])).map(
            lambda iv: (name, _with_value(good[name], iv[0], iv[1]))
        )

    wrong_dtypes = [
        d
        for d in ("float16", "float64", "int32", "uint8", "bool")
        if d != str(good[names[0]].dtype)
    ]
    random_bytes = st.binary(max_size=4096).map(lambda b: Hostile("random-bytes", b))
    truncated = st.integers(0, len(valid) - 1).map(
        lambda n: Hostile("truncated", valid[:n], frozenset({"framing"}))
    )
    wrong_types = st.sampled_from(
        [
            "base_version",
            "num_examples",
            "train_seconds",
            "update_id",
            "worker_id",
            "update_kind",
            "metrics",
        ]
    ).flatmap(
        lambda name: _wrong_value(name).map(
            lambda v: Hostile(
                "wrong-types",
                pack_frame(update_fields(**{name: v}), good),
                frozenset({"invalid-message"}),
            )
        )
    )
    huge_shape = st.tuples(
        st.sampled_from(names), st.lists(st.integers(2**20, 2**47), min_size=1, max_size=4)
    ).map(
        lambda ns: Hostile(
            "huge-shape",
            raw_frame(
                {
                    **update_fields(),
                    "arrays": [{"name": ns[0], "dtype": "float32", "shape": ns[1], "offset": 0}],
                },
                bytes(64),
            ),
            frozenset({"byte-length", "bad-shape"}),
        )
    )
    negative = st.integers(-(2**63), 0).map(
        lambda n: Hostile(
            "negative-count",
            pack_frame(update_fields(num_examples=n), good),
            frozenset({"invalid-message"}),
        )
    )
    future = st.integers(10**7, 2**62).map(
        lambda base: Hostile(
            "future-base",
            pack_frame(update_fields(base_version=base), good),
            frozenset({"future-version"}),
        )
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
    non_finite = (
        st.sampled_from(names).flatmap(poisoned).map(with_arrays("non-finite", "non-finite"))
    )
    wrong_dtype = (
        st.tuples(st.sampled_from(names), st.sampled_from(wrong_dtypes))
        .map(lambda nd: (nd[0], good[nd[0]].astype(nd[1])))
        .map(with_arrays("wrong-dtype", "dtype-mismatch"))
    )
    wrong_shape = (
        st.tuples(st.sampled_from(names), st.lists(st.integers(0, 70), min_size=0, max_size=3))
        .filter(lambda ns: tuple(ns[1]) != good[ns[0]].shape)
        .map(lambda ns: (ns[0], np.zeros(ns[1], good[ns[0]].dtype)))
        .map(with_arrays("wrong-shape", "shape-mismatch", "too-large"))
    )  # a big enough shape is oversize first
    wrong_kind = st.integers(0, 2**62).map(
        lambda v: Hostile(
            "wrong-kind",
            pack_frame(
                {
                    "schema_version": SCHEMA_VERSION,
                    "kind": "request",
                    "worker_id": "intruder",
                    "have_version": v,
                },
                None,
            ),
            frozenset({"unexpected-kind"}),
        )
    )
    bloated = st.integers(10_000, 60_000).map(
        lambda n: Hostile(
            "bloated-header",
            pack_frame(update_fields(metrics={"x": list(range(n))}), good),
            frozenset({"invalid-message"}),
        )
    )
    return st.one_of(
        random_bytes,
        truncated,
        wrong_types,
        huge_shape,
        negative,
        future,
        content_type,
        oversize,
        non_finite,
        wrong_dtype,
        wrong_shape,
        wrong_kind,
        bloated,
    )


def _with_value(array: np.ndarray, index: int, value: float) -> np.ndarray:
    out: np.ndarray = array.copy()
    out.reshape(-1)[index] = value
    return out
