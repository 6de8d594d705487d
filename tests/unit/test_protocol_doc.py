"""docs/protocol.md keeps up with the code: every rejection reason and field, optional ones marked.

The reasons are read from the source (each ``Rejected("…")`` and ``DecodeError("…")``), the
fields from the wire models, so a new reason or field fails here until it is documented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from schemas.messages import ClientUpdate, ModelRequest, ModelVersion, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
REASON = re.compile(r"(?:Rejected|DecodeError)\(\s*\"([a-z]+(?:-[a-z]+)*)\"")
#: In every header, documented in their own sentence rather than a table row.
COMMON = {"schema_version", "kind"}
#: The status report's JSON (read by `fedmq status`, never sent by a worker) has its own decoder.
NOT_ON_THE_UPDATE_PATH = {ROOT / "schemas" / "status.py"}


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for package in ("schemas", "broker", "aggregator"):
        for path in (ROOT / package).rglob("*.py"):
            if path not in NOT_ON_THE_UPDATE_PATH:
                found |= set(REASON.findall(path.read_text()))
    return found


def table_row(section: str, field: str) -> str:
    """The row of ``field`` in the first table after the heading ``section``."""
    body = DOC[DOC.index(section) :]
    row = re.search(rf"^\| `{field}` \|.*$", body, re.M)
    assert row is not None, f"{section}: no row for {field}"
    return row.group(0)


def test_every_rejection_reason_the_code_gives_is_documented() -> None:
    reasons = reasons_in_code()

    assert len(reasons) > 25
    assert {r for r in reasons if f"`{r}`" not in DOC} == set()


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ("### ModelVersion", ModelVersion),
        ("### ClientUpdate", ClientUpdate),
        ("### ModelRequest", ModelRequest),
        ("TrainConfig (every field *optional*)", TrainConfig),
    ],
)
def test_every_field_has_a_row_and_optional_ones_are_marked(
    section: str, model: type[BaseModel]
) -> None:
    for name, field in model.model_fields.items():
        if name in COMMON:
            continue
        row = table_row(section, name)
        if model is not TrainConfig:
            assert ("*optional*" in row) == (not field.is_required()), row
