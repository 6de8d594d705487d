"""The exported JSON Schemas are current and describe what the codec really sends."""

from __future__ import annotations

import msgpack
import numpy as np

from schemas.codec import encode
from schemas.jsonschema import DEFAULT_DIR, message_schemas, render
from schemas.messages import ModelVersion


def test_exported_schemas_are_up_to_date() -> None:
    for name, schema in message_schemas().items():
        path = DEFAULT_DIR / name
        assert path.exists(), f"run `python -m schemas.jsonschema` to export {name}"
        assert path.read_text() == render(schema), (
            f"{name} is stale: run `python -m schemas.jsonschema`"
        )


def test_every_header_field_on_the_wire_is_in_the_schema() -> None:
    body = encode(
        ModelVersion(run_id="r", version=1, created_at=0.0, arrays={"w": np.ones(2, np.float32)})
    )
    header = msgpack.unpackb(msgpack.unpackb(body)[0])
    schema = message_schemas()["model.schema.json"]

    assert set(header) <= set(schema["properties"])
    assert set(schema["required"]) <= set(header)
    assert set(header["arrays"][0]) == set(schema["properties"]["arrays"]["items"]["required"])
