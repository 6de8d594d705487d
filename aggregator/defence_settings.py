"""Settings of the aggregator's defences: sender identity and robust aggregation.

A mixin of ``AggregatorSettings``; every field is a flag (``--identity``, ...)
and a ``FEDMQ_*`` variable. See docs/security.md for the production values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregator.core.identity import IdentitySetting
from aggregator.core.robust import NormAction


class DefenceSettings(BaseSettings):
    """Who may contribute, and how much one contribution may do."""

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    identity: IdentitySetting = Field(
        "auto",
        description=(
            "strict: trust only the broker-validated user_id, which must equal the update's "
            "worker_id (production); open: check nothing (the single-user guest demo); auto: "
            "strict unless connected as guest."
        ),
    )
    roster_file: str | None = Field(
        None,
        description=(
            "Strict identity: JSON roster of active and revoked workers (kept by `fedmq broker`); "
            "re-read when it changes."
        ),
    )
    norm_bound: float | None = Field(
        None,
        gt=1,
        description="Refuse updates over this many times the running median update norm (e.g. 3).",
    )
    norm_action: NormAction = Field(
        "reject", description="What the norm bound does with a large update: reject or clip."
    )
    norm_window: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Norms remembered per worker; their median is the worker's vote.",
    )
    norm_clip: float | None = Field(
        1.0,
        ge=1,
        description=(
            "Norm bound: clip admitted updates to this many times the reference norm (the "
            "median of the workers' votes); none: only the bound applies."
        ),
    )
    fair_share: bool = Field(
        False,
        description=(
            "FedAsync: scale a worker's mixing weight by median share / its share of recent "
            "arrivals, so a fast worker moves the model no more than a typical one."
        ),
    )
    example_cap: float = Field(
        2.0,
        ge=1,
        description=(
            "With --sample-weighting: a claimed example count counts for at most this many "
            "times the median of the workers' admitted counts."
        ),
    )
    aggregation: Literal[
        "mean",
        "median",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "centered-clip",
        "trajectory",
        "reputation",
    ] = Field(
        "mean",
        description=(
            "FedBuff: how the buffer is combined; every rule but mean resists poisoned deltas "
            "(see docs/security.md for which to use against what)."
        ),
    )
    krum_byzantine: int | None = Field(
        None,
        ge=0,
        description="Krum, multi-Krum: deltas per buffer assumed Byzantine (default (K - 3) // 2).",
    )
    clip_iterations: int = Field(
        3, ge=1, le=100, description="Centered clipping: iterations per release."
    )
    trim_fraction: float = Field(
        0.2, ge=0, lt=0.5, description="Trimmed mean: share cut from each end per coordinate."
    )
