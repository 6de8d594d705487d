"""Aggregator configuration: environment (``FEDMQ_*``) and flags, one model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from aggregator.core.identity import IdentityMode, resolve_identity
from aggregator.core.staleness import StalenessName
from aggregator.defence_settings import DefenceSettings
from aggregator.secure_settings import SecureAggregationSettings
from aggregator.shell.failpoints import FAILPOINT_PATTERN
from broker.settings import BrokerSettings
from privacy.settings import AggregatorPrivacySettings
from runtime.observability import ObservabilitySettings
from schemas.messages import CompressionMode
from training.settings import TaskSettings


class AggregatorSettings(
    ObservabilitySettings,
    DefenceSettings,
    SecureAggregationSettings,
    TaskSettings,
    BrokerSettings,
    AggregatorPrivacySettings,
):
    """Strategy, training configuration for workers, stop conditions, and where state lives."""

    strategy: Literal["fedasync", "fedbuff", "fedavg"] = Field(
        "fedasync",
        description="Aggregation: fedasync, fedbuff (asynchronous) or fedavg (synchronous rounds).",
    )
    alpha: float = Field(0.6, gt=0, le=1, description="FedAsync: mixing weight before staleness.")
    staleness: StalenessName = Field(
        "polynomial", description="Staleness function: constant, polynomial, hinge."
    )
    staleness_a: float | None = Field(
        None, gt=0, description="Staleness exponent/slope a (polynomial 0.5, hinge 10)."
    )
    staleness_b: int = Field(4, ge=0, description="Hinge: staleness tolerated at full weight.")
    buffer_size: int = Field(10, ge=1, description="FedBuff: updates per server step (K).")
    server_lr: float = Field(
        1.0, gt=0, description="FedBuff, FedAvg: server learning rate (eta_g)."
    )
    round_min_workers: int = Field(
        1, ge=1, description="FedAvg: updates a round needs before it can close."
    )
    worker_timeout: float = Field(
        60.0,
        gt=0,
        description="FedAvg: a worker not heard from for this many seconds is not waited for.",
    )
    sample_weighting: bool | None = Field(
        None,
        description=(
            "Weight updates by their self-reported example count, capped at --example-cap x the "
            "median (default: off, unit weights)."
        ),
    )
    max_staleness: int | None = Field(
        100, ge=0, description="Reject updates staler than this (versions)."
    )
    local_epochs: int = Field(1, ge=1, description="Told to workers: local epochs per update.")
    batch_size: int = Field(32, ge=1, description="Told to workers: minibatch size.")
    learning_rate: float = Field(0.3, gt=0, description="Told to workers: local learning rate.")
    max_versions: int | None = Field(None, ge=1, description="Stop after this many versions.")
    max_seconds: float | None = Field(None, gt=0, description="Stop after this much training time.")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="Stop once test accuracy reaches this."
    )
    eval_every: int = Field(10, ge=1, description="Evaluate the global model every N versions.")
    seed: int = Field(0, ge=0, description="Seed of the initial model.")
    run_dir: str | None = Field(
        None, description="Metrics, audit log, final model (default runs/<namespace>)."
    )
    state_dir: str | None = Field(
        None, description="Checkpoint directory (default <run_dir>/state)."
    )
    checkpoint: bool = Field(True, description="Persist state before acknowledging updates.")
    prefetch: int | None = Field(
        None, ge=1, le=10_000, description="Unacked updates in flight (default: by model size)."
    )
    compression: CompressionMode = Field(
        "none",
        description=(
            "How workers encode updates: none (float32), float16, int8 (a scale per array, "
            "stochastic rounding) or topk (a delta's largest entries, error feedback)."
        ),
    )
    topk_fraction: float = Field(
        0.01, gt=0, le=1, description="topk: the share of each array's entries a worker sends."
    )
    chunk_idle_seconds: float = Field(
        60.0,
        gt=0,
        description="Give up (dead-letter) a chunked update when none of its chunks came for this.",
    )
    max_batch: int | None = Field(
        None, ge=1, description="Updates applied per commit (default: the prefetch)."
    )
    applied_window: int = Field(
        20_000,
        ge=1,
        description=(
            "How many applied update ids are remembered for deduplication: at least "
            "max_staleness + 1 (fedasync), (max_staleness + 1) x buffer_size (fedbuff)."
        ),
    )
    progress_interval: float = Field(1.0, gt=0, description="Seconds between progress lines.")
    audit_digests: bool = Field(
        True, description="Record a digest of every published version in the audit log."
    )
    failpoint: str | None = Field(
        None,
        pattern=FAILPOINT_PATTERN,
        description=(
            "Fault-injection tests only: SIGKILL this process the Nth time it reaches a point of "
            "the batch loop "
            "(before-checkpoint, after-checkpoint, after-publish), e.g. after-publish:3."
        ),
    )
    insecure_open_defences: bool = Field(
        False,
        description=(
            "Tests and benchmarks as the single guest user only: let --dp and the robust rules run "
            "with open identity, where one worker can pose as many and defeat them."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _topk_sends_a_delta(self) -> AggregatorSettings:
        if self.compression == "topk" and self.strategy == "fedasync":
            raise ValueError(
                "compression topk sparsifies a delta: use --strategy fedbuff or fedavg"
            )
        return self

    @model_validator(mode="after")
    def _window_covers_the_staleness_bound(self) -> AggregatorSettings:
        # A retry carries its original's base version: it is recognised while every update
        # applied within the staleness bound is remembered, and refused as too stale after.
        needed, why = applied_window_needed(self)
        if self.applied_window < needed:
            raise ValueError(
                f"applied_window {self.applied_window} must be at least {needed} ({why}), or a "
                "retried update still within the staleness bound could be refused as too stale"
            )
        return self

    def identity_mode(self) -> IdentityMode:
        """The identity policy in force (``auto`` resolved against the AMQP user)."""
        return resolve_identity(self.identity, self.amqp_user)

    def identity_keyed_defences(self) -> list[str]:
        """The defences switched on that count one vote per worker (see
        ``aggregator.core.identity.open_identity_refusal``)."""
        on = [f"--dp {self.dp}"] if self.dp != "off" else []
        on += ["--norm-bound"] if self.norm_bound is not None else []
        on += ["--fair-share"] if self.fair_share else []
        return on + ([f"--aggregation {self.aggregation}"] if self.aggregation != "mean" else [])

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.namespace

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else self.run_path / "state"


def applied_window_needed(settings: AggregatorSettings) -> tuple[int, str]:
    """The update ids a window must hold so that its floor stays below the staleness bound.

    Every update applied with a base version within the bound must fit: FedAsync
    applies one update per version, FedBuff ``buffer_size``, and a run that stops
    at ``max_versions`` has no more versions than that; a synchronous round
    is as large as its workers, so FedAvg (and an unbounded staleness) is sized
    by the results queue instead (the floor still guarantees nothing is applied
    twice).
    """
    per_version = {"fedasync": 1, "fedbuff": settings.buffer_size}.get(settings.strategy)
    if settings.max_staleness is None or per_version is None:
        return settings.results_max_length, "results_max_length"
    # A run that stops at max_versions never applies more than that many versions' updates.
    versions = min(settings.max_staleness, settings.max_versions or settings.max_staleness)
    bound = "max_staleness" if versions == settings.max_staleness else "max_versions"
    if per_version == 1:
        return versions + 1, f"{bound} + 1"
    return (versions + 1) * per_version, f"({bound} + 1) x buffer_size"
