"""The messages fedmq exchanges, as frozen and strictly validated pydantic models.

Every message carries ``schema_version`` and a ``kind`` discriminator. The
codec (``schemas.codec``) puts them on the wire; this module only says what a
valid message is.
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.arrays import Arrays

#: 2: ``TrainConfig.privacy`` replaced the ``dp_*`` entries of ``TrainConfig.extra``.
#: 3: compressed updates (``TrainConfig.compression``, ``ClientUpdate.compression`` and ``scales``).
SCHEMA_VERSION: Final = 3

WorkerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
UpdateId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{8,80}$")]
MetricValue = int | float | str | bool
UpdateKind = Literal["weights", "delta"]
CompressionMode = Literal["none", "float16", "int8", "topk"]


class Message(BaseModel):
    """Base of every wire message: frozen, no unknown fields, no coercion."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True
    )

    schema_version: Literal[3] = SCHEMA_VERSION


class ClientPrivacy(BaseModel):
    """What a worker must do to a delta before it leaves the machine (user-level DP)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    clip: float = Field(gt=0, description="Scale the delta to L2 norm at most this.")
    noise_multiplier: float = Field(
        0.0,
        ge=0,
        description="Local DP: then add N(0, (noise_multiplier * clip)^2) to every entry.",
    )


class Compression(BaseModel):
    """How workers encode the arrays of their updates (docs/protocol.md, section 5)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    mode: CompressionMode = Field(
        "none", description="float32 as is, float16, int8 with a scale per array, or top-k."
    )
    topk_fraction: float = Field(
        0.01, gt=0, le=1, description="top-k: the share of each array's entries sent."
    )


class TrainConfig(BaseModel):
    """What the aggregator asks workers to do with a model version."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    update_kind: UpdateKind = Field(
        "weights", description="Send the trained weights, or the delta (trained minus base)."
    )
    local_epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(32, ge=1, le=1_000_000)
    learning_rate: float = Field(0.1, gt=0, le=100)
    synchronous: bool = Field(
        False, description="Train each version at most once (synchronous rounds)."
    )
    privacy: ClientPrivacy | None = Field(
        None, description="Clip (and, in local DP, noise) each delta before sending it."
    )
    secure_aggregation: bool = Field(
        False,
        description="Never send an update in the clear: mask it in a secure round (secure-round).",
    )
    compression: Compression = Field(
        default_factory=Compression, description="How to encode the update's arrays."
    )
    max_staleness: int | None = Field(
        None,
        ge=0,
        description=(
            "Updates staler than this (versions) are refused as too-stale; a worker gives up a "
            "refused update past it instead of retrying it."
        ),
    )
    extra: dict[str, MetricValue] = Field(
        default_factory=dict, description="Trainer-specific options."
    )


class ModelVersion(Message):
    """A global model version, broadcast by the aggregator."""

    kind: Literal["model"] = "model"
    run_id: str = Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="Identity of this training run."
    )
    version: int = Field(ge=0)
    created_at: float = Field(description="Unix time the version was made.")
    final: bool = Field(
        False, description="Training has ended; workers should stop after this one."
    )
    config: TrainConfig = TrainConfig()
    arrays: Arrays


class ClientUpdate(Message):
    """A worker's training result, based on one model version."""

    kind: Literal["update"] = "update"
    update_id: UpdateId = Field(
        description="Unique per update; a retry reuses it (deduplication key)."
    )
    worker_id: WorkerId
    base_version: int = Field(ge=0, description="The model version this update was trained from.")
    num_examples: int = Field(ge=1, le=2**40)
    update_kind: UpdateKind
    train_seconds: float = Field(ge=0)
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    compression: CompressionMode = Field(
        "none", description="How ``arrays`` are encoded (the version's config says which)."
    )
    scales: dict[str, float] = Field(
        default_factory=dict, description="int8: one scale per array (value = q * scale)."
    )
    arrays: Arrays

    @field_validator("train_seconds")
    @classmethod
    def _finite_seconds(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("train_seconds must be finite")
        return value


class ModelRequest(Message):
    """A worker asking for the current model version (sent when it attaches)."""

    kind: Literal["request"] = "request"
    worker_id: WorkerId
    have_version: int | None = Field(
        None, ge=0, description="The newest version the worker already has."
    )


WireMessage = ModelVersion | ClientUpdate | ModelRequest
MESSAGE_TYPES: dict[str, type[Message]] = {
    "model": ModelVersion,
    "update": ClientUpdate,
    "request": ModelRequest,
}
