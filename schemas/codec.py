"""Wire codec: a message as one msgpack document, arrays as raw bytes.

Layout (every part is standard msgpack, so any msgpack library can read it)::

    fixarray(2) [ bin(header), bin(payload) ]

``header`` is itself a msgpack map: the message's fields, with ``arrays``
replaced by descriptors ``{name, dtype, shape, offset}``. ``payload`` holds
each array's little-endian bytes at its ``offset`` (64-byte aligned). The
header is padded (the ``pad`` key) so the payload starts 64-byte aligned too.

Encoding writes each array once into a preallocated buffer; decoding returns
read-only numpy views into the received body, so nothing is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import msgpack
import numpy as np
from pydantic import ValidationError

from schemas.arrays import (
    ALLOWED_DTYPES,
    MAX_ARRAYS,
    MAX_NDIM,
    NAME_PATTERN,
    element_count,
    wire_dtype_name,
)
from schemas.errors import DecodeError, EncodeError
from schemas.messages import SCHEMA_VERSION, Message
from schemas.registry import WIRE_TYPES

CONTENT_TYPE = "application/msgpack"
ALIGNMENT = 64
MAX_HEADER_BYTES = 1 << 20
MAX_ELEMENTS = 1 << 40
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
_BIN32 = 0xC6
_FIXARRAY_2 = 0x92

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Limits:
    """Bounds enforced before and while decoding."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def _wire_array(name: str, arr: np.ndarray) -> np.ndarray:
    try:
        dtype_name = wire_dtype_name(arr.dtype)
    except ValueError as exc:
        raise EncodeError(f"array {name!r}: {exc}") from exc
    # astype, not ascontiguousarray: the latter turns 0-d arrays into 1-d ones
    return arr.astype(ALLOWED_DTYPES[dtype_name], order="C", copy=False)


def _pad_length(extra_bytes: int) -> int:
    """Length of the ``pad`` string that grows the packed header by ``extra_bytes`` (mod ALIGNMENT).

    An empty pad packs as one byte; up to 31 characters cost one byte each
    (fixstr), from 32 on one more (str8), so 32 extra bytes are reached as 96.
    """
    if extra_bytes <= 31:
        return extra_bytes
    if extra_bytes == 32:
        extra_bytes += ALIGNMENT
    return extra_bytes - 1


def _header_bytes(fields: dict[str, Any], specs: list[dict[str, Any]] | None) -> bytes:
    """Pack the header, padded so that the payload starts on an aligned offset."""
    if specs is not None:
        fields = {**fields, "arrays": specs}
    unpadded = msgpack.packb({**fields, "pad": ""}, use_bin_type=True)
    extra = -(1 + 5 + len(unpadded) + 5) % ALIGNMENT
    packed: bytes = msgpack.packb({**fields, "pad": "\0" * _pad_length(extra)}, use_bin_type=True)
    if (1 + 5 + len(packed) + 5) % ALIGNMENT:
        raise EncodeError("internal: header padding did not align the payload")
    return packed


def pack_frame(fields: dict[str, Any], arrays: Mapping[str, np.ndarray] | None) -> bytes:
    """Frame a header map and named arrays (``None``: no ``arrays`` key) into one body.

    Each array is copied exactly once, by the final ``join`` into the body.
    """
    return b"".join(frame_parts(fields, arrays))


def frame_parts(
    fields: dict[str, Any], arrays: Mapping[str, np.ndarray] | None
) -> list[bytes | memoryview]:
    """The pieces of ``pack_frame``'s body, arrays as views: write them in order to stream a frame
    uncopied.
    """
    wire = {name: _wire_array(name, arr) for name, arr in (arrays or {}).items()}
    specs, offset = [], 0
    for name, arr in wire.items():
        specs.append(
            {
                "name": name,
                "dtype": wire_dtype_name(arr.dtype),
                "shape": list(arr.shape),
                "offset": offset,
            }
        )
        offset = _align(offset + arr.nbytes)
    header = _header_bytes(fields, specs if arrays is not None else None)
    parts: list[bytes | memoryview] = [
        bytes((_FIXARRAY_2, _BIN32)) + len(header).to_bytes(4, "big"),
        header,
        bytes((_BIN32,)) + offset.to_bytes(4, "big"),
    ]
    for arr in wire.values():
        parts.append(memoryview(arr.reshape(-1).view(np.uint8).data))
        parts.append(bytes(_align(arr.nbytes) - arr.nbytes))  # zero gap: never leak memory
    return parts


def unpack_frame(
    body: bytes | memoryview, limits: Limits = Limits()
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Inverse of ``pack_frame``: the header map and read-only array views into ``body``."""
    if len(body) > limits.max_message_bytes:
        raise DecodeError(
            "too-large",
            f"message of {len(body)} bytes exceeds the limit of {limits.max_message_bytes}",
        )
    view = (
        memoryview(body).cast("B")
        if not isinstance(body, memoryview) or body.format != "B"
        else body
    )
    header, p_start, p_len = _read_frame(view, limits)
    header.pop("pad", None)
    specs = header.pop("arrays", None)
    arrays = _decode_arrays(specs, view, p_start, p_len) if specs is not None else None
    return header, arrays


def encode(message: Message) -> bytes:
    """Encode ``message`` to a body ready for ``basic_publish``."""
    return b"".join(encode_parts(message))


def encode_parts(message: Message) -> list[bytes | memoryview]:
    """``encode``'s body as its pieces, the arrays as views of the message's own (uncopied)."""
    arrays: Mapping[str, np.ndarray] | None = getattr(message, "arrays", None)
    fields = message.model_dump(mode="python", exclude={"arrays"})
    return frame_parts(fields, arrays)


def _read_bin(body: memoryview, pos: int) -> tuple[int, int]:
    """Parse a msgpack bin header at ``pos``: return (data start, data length)."""
    if pos >= len(body):
        raise DecodeError("framing", "body ends before a bin header")
    tag = body[pos]
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}.get(tag)
    if width is None:
        raise DecodeError("framing", f"expected a msgpack bin at byte {pos}, found 0x{tag:02x}")
    if pos + 1 + width > len(body):
        raise DecodeError("framing", "body ends inside a bin header")
    length = int.from_bytes(body[pos + 1 : pos + 1 + width], "big")
    start = pos + 1 + width
    if start + length > len(body):
        raise DecodeError(
            "framing", f"bin at byte {pos} declares {length} bytes, only {len(body) - start} remain"
        )
    return start, length


def _read_frame(body: memoryview, limits: Limits) -> tuple[dict[str, Any], int, int]:
    if len(body) < 3 or body[0] != _FIXARRAY_2:
        raise DecodeError(
            "framing", "body is not a msgpack array of two elements [header, payload]"
        )
    h_start, h_len = _read_bin(body, 1)
    if h_len > limits.max_header_bytes:
        raise DecodeError("too-large", f"header of {h_len} bytes exceeds {limits.max_header_bytes}")
    p_start, p_len = _read_bin(body, h_start + h_len)
    if p_start + p_len != len(body):
        raise DecodeError(
            "framing", f"{len(body) - p_start - p_len} trailing bytes after the payload"
        )
    try:
        header = msgpack.unpackb(
            body[h_start : h_start + h_len],
            raw=False,
            strict_map_key=True,
            max_ext_len=0,
            use_list=True,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(
            "header", f"header is not valid msgpack ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(header, dict):
        raise DecodeError("header", f"header is a {type(header).__name__}, not a map")
    return header, p_start, p_len


def _check_spec(spec: Any, payload_len: int) -> tuple[str, np.dtype, tuple[int, ...], int, int]:
    if not isinstance(spec, dict) or set(spec) != {"name", "dtype", "shape", "offset"}:
        raise DecodeError(
            "bad-array", "an array descriptor must have exactly name, dtype, shape, offset"
        )
    name, dtype_name, shape, offset = spec["name"], spec["dtype"], spec["shape"], spec["offset"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DecodeError("bad-array", f"array name {name!r} is not allowed")
    if not isinstance(dtype_name, str) or dtype_name not in ALLOWED_DTYPES:
        raise DecodeError("unknown-dtype", f"array {name!r}: dtype {dtype_name!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise DecodeError(
            "bad-shape", f"array {name!r}: shape must be a list of at most {MAX_NDIM} sizes"
        )
    if not all(type(d) is int and 0 <= d < 2**48 for d in shape):
        raise DecodeError(
            "bad-shape",
            f"array {name!r}: shape {shape!r} has a negative, absurd or non-integer size",
        )
    if type(offset) is not int or offset < 0 or offset % ALIGNMENT:
        raise DecodeError(
            "bad-array",
            f"array {name!r}: offset {offset!r} is not a non-negative multiple of {ALIGNMENT}",
        )
    if element_count(shape) > MAX_ELEMENTS:
        raise DecodeError(
            "bad-shape", f"array {name!r}: shape {shape} has more than {MAX_ELEMENTS} elements"
        )
    dtype = ALLOWED_DTYPES[dtype_name]
    nbytes = element_count(shape) * dtype.itemsize
    if offset + nbytes > payload_len:
        raise DecodeError(
            "byte-length",
            f"array {name!r}: shape {shape} needs {nbytes} bytes at offset {offset}, payload has "
            f"{payload_len}",
        )
    return name, dtype, tuple(shape), offset, nbytes


def _decode_arrays(specs: Any, body: memoryview, p_start: int, p_len: int) -> dict[str, np.ndarray]:
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise DecodeError("bad-array", f"arrays must be a list of at most {MAX_ARRAYS} descriptors")
    arrays: dict[str, np.ndarray] = {}
    spans: list[tuple[int, int]] = []
    for spec in specs:
        name, dtype, shape, offset, nbytes = _check_spec(spec, p_len)
        if name in arrays:
            raise DecodeError("bad-array", f"array {name!r} appears twice")
        arr = np.frombuffer(
            body, dtype=dtype, count=element_count(shape), offset=p_start + offset
        ).reshape(shape)
        arr.flags.writeable = False
        arrays[name] = arr
        spans.append((offset, offset + nbytes))
    spans.sort()
    if any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)):
        raise DecodeError("bad-array", "array byte ranges overlap")
    return arrays


@overload
def decode(
    body: bytes | memoryview,
    expected: type[M],
    *,
    content_type: str | None = ...,
    limits: Limits = ...,
) -> M: ...
@overload
def decode(
    body: bytes | memoryview,
    expected: None = ...,
    *,
    content_type: str | None = ...,
    limits: Limits = ...,
) -> Message: ...


def decode(
    body: bytes | memoryview,
    expected: type[M] | None = None,
    *,
    content_type: str | None = CONTENT_TYPE,
    limits: Limits = Limits(),
) -> Message:
    """Decode and validate a body; raise ``DecodeError`` with a reason on any violation.

    ``content_type`` is the AMQP property as received (pass ``CONTENT_TYPE``
    to skip the check when there are no properties, e.g. from a file).
    The returned arrays are read-only views into ``body``.
    """
    if content_type != CONTENT_TYPE:
        raise DecodeError("content-type", f"content_type {content_type!r} is not {CONTENT_TYPE!r}")
    header, arrays = unpack_frame(body, limits)
    if header.get("schema_version") != SCHEMA_VERSION:
        raise DecodeError(
            "schema-version",
            f"schema_version {header.get('schema_version')!r} is not {SCHEMA_VERSION}",
        )
    kind = header.get("kind")
    cls = WIRE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise DecodeError(
            "unknown-kind", f"message kind {kind!r} is not one of {sorted(WIRE_TYPES)}"
        )
    if expected is not None and cls is not expected:
        raise DecodeError("unexpected-kind", f"expected a {expected.__name__}, got kind {kind!r}")
    if arrays is not None:
        header["arrays"] = arrays
    try:
        return cls.model_validate(header)
    except ValidationError as exc:
        raise DecodeError("invalid-message", _summarise(exc)) from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
