"""Hostile messages for the results path, as hypothesis strategies.

Each draws a ``Hostile``: a body, the AMQP properties it is sent with, its
kind, and the dead-letter reasons the aggregator may give it (empty set:
any reason will do, e.g. for random bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack
import numpy as np
from hypothesis import strategies as st

from schemas.codec import CONTENT_TYPE, pack_frame

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Hostile:
    kind: str
    body: bytes
    expected: frozenset[str] = frozenset()
    content_type: str | None = CONTENT_TYPE
    properties: dict[str, Any] = field(default_factory=dict)


def update_fields(base_version: int, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        schema_version=1, kind="update", update_id="hostile-update", worker_id="intruder", base_version=base_version,
        num_examples=10, update_kind="weights", train_seconds=0.1, metrics={},
    )
    fields.update(over)
    return fields


def raw_frame(header: dict[str, Any], payload: bytes) -> bytes:
    """A well-framed body with any header at all (no validation on our side)."""
    return msgpack.packb([msgpack.packb(header, use_bin_type=True), payload], use_bin_type=True)


def _wrong_value(name: str) -> st.SearchStrategy[Any]:
    wrong_for_int = st.one_of(st.text(max_size=8), st.floats(allow_nan=False), st.lists(st.integers(), max_size=3), st.none(), st.booleans())
    wrong_for_str = st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=3), st.none(), st.binary(max_size=8))
    return {
        "base_version": wrong_for_int, "num_examples": wrong_for_int, "train_seconds": st.one_of(st.text(max_size=4), st.none()),
        "update_id": wrong_for_str, "worker_id": wrong_for_str, "update_kind": st.one_of(st.integers(), st.sampled_from(["both", ""])),
        "metrics": st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5)),
    }[name]


def hostile_messages(model: Weights, version: Callable[[], int], max_bytes: int) -> st.SearchStrategy[Hostile]:
    """Every kind of hostile message; ``version()`` is a recent model version (for base versions)."""
    good = {name: np.zeros(a.shape, a.dtype) for name, a in model.items()}
    valid = pack_frame(update_fields(0), good)
    first = next(iter(model))

    def with_arrays(kind: str, arrays: Weights, reason: str) -> Hostile:
        return Hostile(kind, pack_frame(update_fields(0), arrays), frozenset({reason}))

    random_bytes = st.binary(max_size=4096).map(lambda b: Hostile("random-bytes", b))
    truncated = st.integers(0, len(valid) - 1).map(lambda n: Hostile("truncated", valid[:n], frozenset({"framing"})))
    wrong_types = st.sampled_from(
        ["base_version", "num_examples", "train_seconds", "update_id", "worker_id", "update_kind", "metrics"]
    ).flatmap(
        lambda name: _wrong_value(name).map(
            lambda v: Hostile("wrong-types", pack_frame(update_fields(0, **{name: v}), good), frozenset({"invalid-message"}))
        )
    )
    huge_shape = st.lists(st.integers(2**20, 2**47), min_size=1, max_size=4).map(
        lambda shape: Hostile(
            "huge-shape",
            raw_frame({**update_fields(0), "arrays": [{"name": first, "dtype": "float32", "shape": shape, "offset": 0}]}, bytes(64)),
            frozenset({"byte-length", "bad-shape"}),
        )
    )
    negative = st.integers(-(2**63), 0).map(
        lambda n: Hostile("negative-count", pack_frame(update_fields(0, num_examples=n), good), frozenset({"invalid-message"}))
    )
    future = st.integers(1000, 2**62).map(
        lambda ahead: Hostile("future-base", pack_frame(update_fields(version() + ahead), good), frozenset({"future-version"}))
    )
    content_type = st.sampled_from(["application/json", "text/plain", "", None, "application/msgpack; x=1"]).map(
        lambda ct: Hostile("content-type", valid, frozenset({"content-type"}), content_type=ct)
    )
    oversize = st.integers(max_bytes + 1, 2 * max_bytes).map(lambda n: Hostile("oversize", bytes(n), frozenset({"too-large"})))
    non_finite = st.sampled_from([np.nan, np.inf, -np.inf]).map(
        lambda v: with_arrays("non-finite", {**good, first: np.full_like(good[first], v)}, "non-finite")
    )
    wrong_dtype = st.just(with_arrays("wrong-dtype", {**good, first: good[first].astype(np.float64)}, "dtype-mismatch"))
    wrong_shape = st.just(with_arrays("wrong-shape", {**good, first: good[first].reshape(-1)[:-1]}, "shape-mismatch"))
    wrong_kind = st.just(
        Hostile("wrong-kind", pack_frame({"schema_version": 1, "kind": "request", "worker_id": "intruder", "have_version": None}, None), frozenset({"unexpected-kind"}))
    )
    bloated = st.integers(10_000, 60_000).map(
        lambda n: Hostile("bloated-header", pack_frame(update_fields(0, metrics={"x": list(range(n))}), good), frozenset({"invalid-message"}))
    )
    return st.one_of(
        random_bytes, truncated, wrong_types, huge_shape, negative, future, content_type, oversize,
        non_finite, wrong_dtype, wrong_shape, wrong_kind, bloated,
    )
