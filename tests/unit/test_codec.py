"""The wire codec: round trips for every allowed dtype and shape, rejections for the rest."""

from __future__ import annotations

import msgpack
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from schemas.arrays import ALLOWED_DTYPES
from schemas.codec import CONTENT_TYPE, Limits, decode, encode, pack_frame, unpack_frame
from schemas.errors import DecodeError, EncodeError
from schemas.messages import SCHEMA_VERSION, ClientUpdate, ModelRequest, ModelVersion

DEFAULT_LIMITS = Limits()


def make_update(**overrides: object) -> ClientUpdate:
    fields: dict[str, object] = {
        "update_id": "u-0123456789",
        "worker_id": "w1",
        "base_version": 3,
        "num_examples": 10,
        "update_kind": "weights",
        "train_seconds": 0.5,
        "metrics": {"loss": 0.25},
        "arrays": {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, np.float32)},
    }
    fields.update(overrides)
    return ClientUpdate(**fields)  # type: ignore[arg-type]


def frame(header: dict[str, object], payload: bytes = b"") -> bytes:
    """A hand-built body: [bin(header), bin(payload)], for malformed-input tests."""
    body: bytes = msgpack.packb([msgpack.packb(header), payload], use_bin_type=True)
    return body


def valid_header(**overrides: object) -> dict[str, object]:
    update = make_update(arrays={})
    header = update.model_dump(exclude={"arrays"})
    header["arrays"] = []
    header.update(overrides)
    return header


array_strategy = hnp.arrays(
    dtype=st.sampled_from(list(ALLOWED_DTYPES.values())),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
)


@settings(max_examples=300, deadline=None)
@given(
    arrays=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), array_strategy, max_size=4
    )
)
def test_round_trip_preserves_every_dtype_and_shape(arrays: dict[str, np.ndarray]) -> None:
    update = make_update(arrays=arrays)

    decoded = decode(encode(update), ClientUpdate)

    assert decoded.model_dump(exclude={"arrays"}) == update.model_dump(exclude={"arrays"})
    assert set(decoded.arrays) == set(arrays)
    for name, arr in arrays.items():
        out = decoded.arrays[name]
        assert out.shape == arr.shape and out.dtype == arr.dtype.newbyteorder("<")
        np.testing.assert_array_equal(out, arr)


def test_decoded_arrays_are_read_only_views_into_the_body() -> None:
    body = encode(make_update())

    decoded = decode(body, ClientUpdate)

    w = decoded.arrays["W"]
    assert not w.flags.writeable
    assert np.shares_memory(w, np.frombuffer(body, np.uint8))
    assert (
        w.ctypes.data % 64 == np.frombuffer(body, np.uint8).ctypes.data % 64
    )  # aligned relative to the body


def test_large_array_round_trip() -> None:
    big = np.random.default_rng(0).standard_normal(3_000_000).astype(np.float32)

    decoded = decode(encode(make_update(arrays={"w": big})), ClientUpdate)

    np.testing.assert_array_equal(decoded.arrays["w"], big)


def test_big_endian_input_is_sent_little_endian() -> None:
    arr = np.arange(5, dtype=">i4")

    decoded = decode(encode(make_update(arrays={"a": arr})), ClientUpdate)

    assert decoded.arrays["a"].dtype == np.dtype("<i4")
    np.testing.assert_array_equal(decoded.arrays["a"], arr)


def test_messages_without_arrays_round_trip() -> None:
    request = ModelRequest(worker_id="w9", have_version=4)

    assert decode(encode(request), ModelRequest) == request


def test_body_is_plain_msgpack_readable_by_any_library() -> None:
    body = encode(make_update())

    header_bytes, payload = msgpack.unpackb(body)
    header = msgpack.unpackb(header_bytes)

    assert header["kind"] == "update" and header["worker_id"] == "w1"
    spec = next(s for s in header["arrays"] if s["name"] == "W")
    raw = payload[spec["offset"] : spec["offset"] + 24]
    np.testing.assert_array_equal(
        np.frombuffer(raw, "<f4").reshape(spec["shape"]), np.arange(6).reshape(2, 3)
    )


@pytest.mark.parametrize("dtype", [np.complex64, np.object_, "U3", "datetime64[s]"])
def test_encoding_refuses_dtypes_off_the_allow_list(dtype: npt.DTypeLike) -> None:
    arr = np.zeros(2, dtype=dtype)
    with pytest.raises((EncodeError, ValueError)):
        encode(make_update(arrays={"x": arr}))


def _reason(
    body: bytes, *, content_type: str | None = CONTENT_TYPE, limits: Limits = DEFAULT_LIMITS
) -> str:
    with pytest.raises(DecodeError) as info:
        decode(body, ClientUpdate, content_type=content_type, limits=limits)
    return info.value.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "framing"),
        (b"\x00\x01\x02", "framing"),
        (b"\x92\xc6\x00\x00\x00\x10abc", "framing"),
        (msgpack.packb([b"\xc1", b""]), "header"),
        (msgpack.packb([msgpack.packb([1, 2]), b""]), "header"),
        (frame(valid_header(schema_version=SCHEMA_VERSION + 1)), "schema-version"),
        (frame(valid_header(kind="nope")), "unknown-kind"),
        (frame(valid_header(kind="request")), "unexpected-kind"),
        (
            frame(
                valid_header(
                    arrays=[{"name": "x", "dtype": "complex64", "shape": [1], "offset": 0}]
                ),
                bytes(64),
            ),
            "unknown-dtype",
        ),
        (
            frame(
                valid_header(arrays=[{"name": "x", "dtype": "object", "shape": [1], "offset": 0}]),
                bytes(64),
            ),
            "unknown-dtype",
        ),
        (
            frame(
                valid_header(arrays=[{"name": "x", "dtype": "float32", "shape": [4], "offset": 0}]),
                bytes(8),
            ),
            "byte-length",
        ),
        (
            frame(
                valid_header(
                    arrays=[{"name": "x", "dtype": "float32", "shape": [2**40, 2**40], "offset": 0}]
                )
            ),
            "bad-shape",
        ),
        (
            frame(
                valid_header(arrays=[{"name": "x", "dtype": "float32", "shape": [-1], "offset": 0}])
            ),
            "bad-shape",
        ),
        (
            frame(
                valid_header(
                    arrays=[{"name": "x", "dtype": "float32", "shape": [1.5], "offset": 0}]
                )
            ),
            "bad-shape",
        ),
        (
            frame(
                valid_header(
                    arrays=[{"name": "x", "dtype": "float32", "shape": [1] * 40, "offset": 0}]
                )
            ),
            "bad-shape",
        ),
        (
            frame(
                valid_header(arrays=[{"name": "x", "dtype": "float32", "shape": [1], "offset": 3}]),
                bytes(64),
            ),
            "bad-array",
        ),
        (frame(valid_header(arrays="nope")), "bad-array"),
        (
            frame(
                valid_header(
                    arrays=[
                        {"name": "x", "dtype": "float32", "shape": [20], "offset": 0},
                        {"name": "y", "dtype": "float32", "shape": [4], "offset": 64},
                    ]
                ),
                bytes(128),
            ),
            "bad-array",
        ),
        (frame(valid_header(num_examples=-3)), "invalid-message"),
        (frame(valid_header(num_examples="10")), "invalid-message"),
        (frame(valid_header(base_version=1.0)), "invalid-message"),
        (frame(valid_header(unexpected=1)), "invalid-message"),
        (frame(valid_header(update_id="short")), "invalid-message"),
        (frame(valid_header(train_seconds=float("nan"))), "invalid-message"),
    ],
)
def test_malformed_bodies_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    assert _reason(body) == reason


def test_overlapping_arrays_are_rejected() -> None:
    specs = [
        {"name": "x", "dtype": "float32", "shape": [32], "offset": 0},
        {"name": "y", "dtype": "float32", "shape": [4], "offset": 64},
    ]
    assert _reason(frame(valid_header(arrays=specs), bytes(192))) == "bad-array"


def test_size_limit_is_checked_before_decoding() -> None:
    body = encode(make_update(arrays={"w": np.zeros(10_000, np.float32)}))

    assert _reason(body, limits=Limits(max_message_bytes=1024)) == "too-large"


def test_wrong_content_type_is_rejected() -> None:
    body = encode(make_update())

    assert _reason(body, content_type="application/python-pickle") == "content-type"
    assert _reason(body, content_type=None) == "content-type"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_escape_as_anything_but_decode_error(body: bytes) -> None:
    try:
        decode(body, ClientUpdate, content_type=CONTENT_TYPE)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=200))
def test_truncated_bodies_are_rejected(cut: int) -> None:
    body = encode(make_update())
    truncated = body[: max(len(body) - 1 - cut, 0)]

    with pytest.raises(DecodeError):
        decode(truncated, ClientUpdate)


def test_frames_carry_arbitrary_headers_and_arrays() -> None:
    body = pack_frame({"format": "x", "n": [1, 2]}, {"a/b": np.ones((2, 2))})

    header, arrays = unpack_frame(body)

    assert header == {"format": "x", "n": [1, 2]}
    assert arrays is not None and arrays["a/b"].sum() == 4


def test_model_version_round_trip_keeps_config() -> None:
    model = ModelVersion(
        run_id="r1", version=7, created_at=1.0, arrays={"w": np.ones(3, np.float32)}
    )

    decoded = decode(encode(model), ModelVersion)

    assert decoded.config == model.config and decoded.version == 7 and decoded.run_id == "r1"


def test_messages_are_frozen() -> None:
    update = make_update()
    with pytest.raises(ValidationError, match="frozen"):
        update.base_version = 9  # type: ignore[misc]
