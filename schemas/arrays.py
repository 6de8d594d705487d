"""Named numpy arrays as a pydantic field type, and the dtypes allowed on the wire.

Arrays travel as dtype + shape + raw little-endian bytes (see ``codec``); they
are never pickled, because unpickling attacker-controlled bytes runs code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

#: Wire dtype name -> numpy dtype (always little-endian on the wire).
ALLOWED_DTYPES: Mapping[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
}

MAX_NDIM = 32
MAX_ARRAYS = 1024
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:/\-]{1,128}$")


def wire_dtype_name(dtype: np.dtype) -> str:
    """The wire name of ``dtype``, or ``ValueError`` if it is not allowed."""
    for name, allowed in ALLOWED_DTYPES.items():
        if dtype.kind == allowed.kind and dtype.itemsize == allowed.itemsize:
            return name
    raise ValueError(
        f"dtype {dtype} is not allowed on the wire (allowed: {', '.join(ALLOWED_DTYPES)})"
    )


def element_count(shape: tuple[int, ...] | list[int]) -> int:
    """Number of elements in ``shape`` (exact integer arithmetic, no overflow)."""
    return math.prod(shape)


def _validate_arrays(value: Any) -> dict[str, np.ndarray]:
    if not isinstance(value, Mapping):
        raise ValueError("arrays must be a mapping of name to numpy array")
    if len(value) > MAX_ARRAYS:
        raise ValueError(f"at most {MAX_ARRAYS} arrays are allowed")
    out: dict[str, np.ndarray] = {}
    for name, arr in value.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(f"array name {name!r} is not allowed")
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"array {name!r} is a {type(arr).__name__}, not a numpy array")
        wire_dtype_name(arr.dtype)
        if arr.ndim > MAX_NDIM:
            raise ValueError(f"array {name!r} has {arr.ndim} dimensions (at most {MAX_NDIM})")
        out[name] = arr
    return out


class _ArraysAnnotation:
    """Pydantic hooks: validate a ``dict[str, np.ndarray]`` without copying it."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_arrays,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "array",
            "description": (
                "On the wire: one descriptor per named array; the raw little-endian bytes "
                "of the array start `offset` bytes into the payload (see docs/protocol.md)."
            ),
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "dtype", "shape", "offset"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN.pattern},
                    "dtype": {"enum": list(ALLOWED_DTYPES)},
                    "shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0},
                        "maxItems": MAX_NDIM,
                    },
                    "offset": {"type": "integer", "minimum": 0},
                },
            },
            "maxItems": MAX_ARRAYS,
        }


#: Named arrays: a model's parameters, a client's weights or delta.
Arrays = Annotated[dict[str, np.ndarray], _ArraysAnnotation]
