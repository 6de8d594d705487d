"""Export the JSON Schema of every wire message (``python -m schemas.jsonschema OUT_DIR``).

The schemas describe the msgpack *header* of each message: its fields, with
``arrays`` as the list of array descriptors that travels on the wire.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.messages import SCHEMA_VERSION
from schemas.registry import WIRE_TYPES

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"


def message_schemas() -> dict[str, dict[str, Any]]:
    """``{file name: JSON Schema}`` for every message kind."""
    out = {}
    for kind, cls in WIRE_TYPES.items():
        schema = cls.model_json_schema(mode="validation")
        schema["$id"] = f"urn:fedmq:schema:v{SCHEMA_VERSION}:{kind}"
        schema["properties"]["pad"] = {
            "type": "string",
            "description": "Padding so the payload starts 64-byte aligned; readers ignore it.",
        }
        out[f"{kind}.schema.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in message_schemas().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for path in export(target):
        print(path)
