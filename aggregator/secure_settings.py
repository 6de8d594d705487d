"""Settings of secure aggregation (``--secure-aggregation``): SecAgg+ per FedBuff buffer.

A mixin of ``AggregatorSettings``; see docs/secure-aggregation.md.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecureAggregationSettings(BaseSettings):
    """Whether buffers are summed under SecAgg+, and its parameters."""

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    secure_aggregation: bool = Field(
        False,
        description=(
            "FedBuff: the aggregator learns only each buffer's sum (SecAgg+; needs --identity "
            "strict)."
        ),
    )
    secure_cohort_size: int = Field(
        100, ge=2, le=10_000, description="Secure aggregation: most workers invited per buffer."
    )
    secure_clip: float = Field(
        10.0, gt=0, description="Secure aggregation: workers clip each delta to this L2 norm."
    )
    secure_dropout_rate: float = Field(
        0.2, ge=0, lt=1, description="Secure aggregation: share of a cohort allowed to drop out."
    )
    secure_stage_timeout: float = Field(
        60.0,
        gt=0,
        description="Secure aggregation: a stage closes without the workers silent this long.",
    )
