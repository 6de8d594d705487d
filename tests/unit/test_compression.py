"""Compressed updates: each codec round-trips within its error, and malformed ones are refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from schemas.compression import INDEX_PREFIX, compress, expand, kept_entries
from schemas.errors import DecodeError

MODEL = {"w": np.zeros((4, 5), np.float32), "b": np.zeros(5, np.float32)}
FLOATS = hnp.arrays(
    np.float32,
    hnp.array_shapes(max_dims=3, max_side=12),
    elements=st.floats(-1e3, 1e3, width=32),
)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_int8_hand_computed_scale_and_values() -> None:
    x = {"w": np.array([-1.27, 0.0, 0.635, 1.27], np.float32)}

    c = compress(x, "int8", rng=rng())

    assert c.scales["w"] == pytest.approx(0.01)
    assert c.arrays["w"].dtype == np.int8
    assert list(c.arrays["w"][[0, 1, 3]]) == [-127, 0, 127]  # exact grid points never move
    assert c.arrays["w"][2] in (63, 64)  # 63.5 rounds either way


def test_int8_stochastic_rounding_is_unbiased() -> None:
    x = {"w": np.full(200_000, 0.3, np.float32), "peak": np.array([1.27], np.float32)}
    gen = rng()

    c = compress({"w": np.concatenate([x["w"], x["peak"]])}, "int8", rng=gen)
    mean = float(c.arrays["w"][:-1].astype(np.float64).mean() * c.scales["w"])

    assert mean == pytest.approx(0.3, abs=3e-4)  # rounding to 0.29 or 0.30 would be 0.01 off


@settings(max_examples=25, deadline=None)
@given(arr=FLOATS)
def test_int8_and_float16_expand_within_their_error(arr: np.ndarray) -> None:
    model = {"a": np.zeros(arr.shape, np.float32)}
    peak = float(np.max(np.abs(arr))) if arr.size else 0.0

    for mode, tolerance in (("int8", peak / 127 + 1e-6), ("float16", 1e-3 * peak + 1e-3)):
        c = compress({"a": arr}, mode, rng=rng())  # type: ignore[arg-type]
        back = expand(c.arrays, c.scales, mode=mode, model=model, fraction=0.01)  # type: ignore[arg-type]
        assert back["a"].dtype == np.float32 and back["a"].shape == arr.shape
        assert np.all(np.abs(back["a"] - arr) <= tolerance)


def test_topk_keeps_the_largest_entries_and_the_rest_waits_in_the_residual() -> None:
    x = {"w": np.array([[0.1, -5.0, 0.2], [3.0, 0.0, -0.3]], np.float32)}
    residual: dict[str, np.ndarray] = {}

    c = compress(x, "topk", rng=rng(), fraction=2 / 6, residual=residual)
    d = compress(
        {"w": np.zeros((2, 3), np.float32)}, "topk", rng=rng(), fraction=2 / 6, residual=residual
    )

    assert list(c.arrays[INDEX_PREFIX + "w"]) == [1, 3]
    assert list(c.arrays["w"]) == [-5.0, 3.0]
    assert list(d.arrays[INDEX_PREFIX + "w"]) == [2, 5]  # error feedback: 0.2 and -0.3 go next
    assert list(d.arrays["w"]) == pytest.approx([0.2, -0.3])


@settings(max_examples=25, deadline=None)
@given(arrays=st.lists(FLOATS, min_size=1, max_size=6), fraction=st.floats(0.001, 1.0))
def test_topk_with_error_feedback_loses_nothing_over_time(
    arrays: list[np.ndarray], fraction: float
) -> None:
    """Sum of everything sent + what is still in the residual = sum of every update."""
    shape = arrays[0].shape
    updates = [np.resize(a, shape).astype(np.float32) for a in arrays]
    model = {"a": np.zeros(shape, np.float32)}
    residual: dict[str, np.ndarray] = {}
    sent = np.zeros(shape, np.float64)

    for u in updates:
        c = compress({"a": u}, "topk", rng=rng(), fraction=fraction, residual=residual)
        sent += expand(c.arrays, {}, mode="topk", model=model, fraction=fraction)["a"]
        assert c.arrays["a"].size == kept_entries(u.size, fraction)

    total = np.sum([u.astype(np.float64) for u in updates], axis=0)
    leftover = residual["a"].reshape(shape) if "a" in residual else 0.0
    assert np.allclose(sent + leftover, total, rtol=1e-4, atol=1e-2)


def valid(mode: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    x = {n: np.ones(a.shape, np.float32) for n, a in MODEL.items()}
    c = compress(x, mode, rng=rng(), fraction=0.2)  # type: ignore[arg-type]
    return dict(c.arrays), dict(c.scales)


def _set(arrays: dict[str, np.ndarray], name: str, at: int, value: int) -> None:
    arrays[name] = arrays[name].copy()
    arrays[name].reshape(-1)[at] = value


IDX = INDEX_PREFIX + "w"
BREAK: dict[str, Callable[[dict[str, np.ndarray], dict[str, float]], object]] = {
    "missing": lambda a, s: a.pop("b"),
    "dtype": lambda a, s: a.update(w=a["w"].astype(np.float64)),
    "shape": lambda a, s: a.update(w=a["w"][:2]),
    "scale-nan": lambda a, s: s.update(w=float("nan")),
    "scale-zero": lambda a, s: s.update(w=0.0),
    "no-scales": lambda a, s: s.clear(),
    "minus-128": lambda a, s: _set(a, "w", 0, -128),
    "index-range": lambda a, s: _set(a, IDX, 0, 20),
    "index-twice": lambda a, s: _set(a, IDX, 1, int(a[IDX][0])),
    "too-many": lambda a, s: a.update(
        {"w": np.ones(20, np.float32), IDX: np.arange(20, dtype=np.uint32)}
    ),
    "index-dtype": lambda a, s: a.update({IDX: a[IDX].astype(np.int64)}),
    "scales-on-topk": lambda a, s: s.update(w=1.0, b=1.0),
}


def broken(mode: str, change: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    arrays, scales = valid(mode)
    BREAK[change](arrays, scales)
    return arrays, scales


@pytest.mark.parametrize(
    ("mode", "change", "reason"),
    [
        ("float16", "missing", "array-names"),
        ("float16", "dtype", "dtype-mismatch"),
        ("float16", "shape", "shape-mismatch"),
        ("int8", "scale-nan", "bad-compression"),
        ("int8", "scale-zero", "bad-compression"),
        ("int8", "no-scales", "bad-compression"),
        ("int8", "minus-128", "bad-compression"),
        ("int8", "dtype", "dtype-mismatch"),
        ("topk", "index-range", "bad-compression"),
        ("topk", "index-twice", "bad-compression"),
        ("topk", "too-many", "bad-compression"),
        ("topk", "index-dtype", "dtype-mismatch"),
        ("topk", "scales-on-topk", "bad-compression"),
        ("topk", "missing", "array-names"),
    ],
)
def test_a_malformed_compressed_update_is_refused(mode: str, change: str, reason: str) -> None:
    arrays, scales = broken(mode, change)

    with pytest.raises(DecodeError) as info:
        expand(arrays, scales, mode=mode, model=MODEL, fraction=0.2)  # type: ignore[arg-type]

    assert info.value.reason == reason


@pytest.mark.parametrize("mode", ["float16", "int8", "topk"])
def test_a_valid_compressed_update_expands_to_the_models_dtypes(mode: str) -> None:
    arrays, scales = valid(mode)

    dense = expand(arrays, scales, mode=mode, model=MODEL, fraction=0.2)  # type: ignore[arg-type]

    assert {n: (a.shape, a.dtype) for n, a in dense.items()} == {
        n: (a.shape, a.dtype) for n, a in MODEL.items()
    }
