"""The aggregator's status report: a small JSON message kept in the latest-value queue
``{ns}.status``.

It is for people and scripts (``fedmq status``, the management UI's "Get
messages"), not for training, so it is JSON rather than msgpack; like every
other message it is a frozen pydantic model with a schema version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import DecodeError

STATUS_CONTENT_TYPE = "application/json"

Scalar = int | float | str | bool | None


class WorkerStatus(BaseModel):
    """One worker as the aggregator has seen it (from its applied updates)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    updates: int = Field(ge=0)
    last_update: float = Field(description="Unix time of its latest applied update.")
    mean_staleness: float = Field(ge=0)
    mean_train_seconds: float = Field(ge=0)


class StatusReport(BaseModel):
    """What the aggregator is doing, published every progress interval and once at the end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    kind: Literal["status"] = "status"
    run_id: str
    time: float = Field(description="Unix time the report was made.")
    strategy: str
    num_partitions: int = Field(ge=1)
    version: int = Field(ge=0)
    elapsed: float = Field(ge=0, description="Training seconds, across restarts.")
    updates_per_s: float = Field(ge=0)
    versions_per_s: float = Field(ge=0)
    applied: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    rejected: dict[str, int] = Field(
        default_factory=dict, description="Rejected updates by reason."
    )
    pending: int = Field(
        0, ge=0, description="Updates buffered but not yet in a version (FedBuff)."
    )
    staleness_histogram: dict[int, int] = Field(
        default_factory=dict, description="Applied updates per staleness."
    )
    staleness_mean: float = Field(0.0, ge=0)
    staleness_max: int = Field(0, ge=0)
    accuracy: float | None = None
    loss: float | None = None
    eval_version: int | None = Field(
        None, description="The version accuracy and loss were measured on."
    )
    epsilon: float | None = Field(
        None, description="Privacy budget spent so far, once differential privacy is on."
    )
    workers_seen: int = Field(
        0, ge=0, description="Distinct workers with an applied update in this session."
    )
    workers: list[WorkerStatus] = Field(
        default_factory=list, description="The most recently seen workers."
    )
    finished: bool = False
    stopped_because: str = ""
    extra: dict[str, Scalar] = Field(
        default_factory=dict, description="Other progress fields (forward compatible)."
    )


def encode_status(report: StatusReport) -> bytes:
    return report.model_dump_json().encode()


def decode_status(body: bytes | memoryview) -> StatusReport:
    """Parse a status message; ``DecodeError`` if it is not one."""
    try:
        return StatusReport.model_validate_json(bytes(body))
    except ValidationError as exc:
        raise DecodeError(
            "schema",
            f"not a status report: {exc.error_count()} error(s), first: {exc.errors()[0]['msg']}",
        ) from None
