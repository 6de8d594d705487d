"""Privacy fields of the aggregator's and the worker's settings (each becomes a flag and a FEDMQ_*
variable).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from privacy.adaptive import default_count_stddev, update_noise_multiplier
from privacy.local_guard import LocalGuard, local_guard


class AggregatorPrivacySettings(BaseModel):
    """User-level differential privacy at the aggregator, and the privacy budget."""

    dp: Literal["off", "central", "local", "distributed"] = Field(
        "off",
        description=(
            "User-level DP: off, central (aggregator clips and noises), local (workers clip and "
            "noise), distributed (with --secure-aggregation: workers add Skellam noise before "
            "masking)."
        ),
    )
    dp_clip: float = Field(
        1.0,
        gt=0,
        description="DP: L2 bound C on one update (the start value with adaptive clipping).",
    )
    dp_noise_multiplier: float = Field(
        1.0,
        ge=0,
        description="DP: z; each release gets N(0, (zC)^2) on its sum of clipped updates.",
    )
    dp_adaptive_clip: bool = Field(
        False, description="DP: move C toward a quantile of update norms (Andrew et al. 2021)."
    )
    dp_target_quantile: float = Field(
        0.5, ge=0, le=1, description="DP adaptive clipping: target quantile gamma."
    )
    dp_clip_learning_rate: float = Field(
        0.2, gt=0, description="DP adaptive clipping: learning rate eta."
    )
    dp_count_stddev: float | None = Field(
        None, gt=0, description="DP adaptive clipping: noise on the clipped count (default K/20)."
    )
    dp_client_clip: bool = Field(
        False, description="DP central: workers also clip before sending (fixed C only)."
    )
    dp_accountant: Literal["rdp", "pld"] = Field(
        "rdp", description="DP accountant from dp-accounting: rdp (fast) or pld (tighter)."
    )
    dp_seed: int | None = Field(
        None,
        ge=0,
        description="DP noise seed, for tests and benchmarks only (default: OS entropy).",
    )
    target_epsilon: float | None = Field(
        None, gt=0, description="Privacy budget: stop before a release would exceed this epsilon."
    )
    target_delta: float = Field(
        1e-5, gt=0, lt=1, description="Privacy budget: the delta epsilon is reported at."
    )

    @model_validator(mode="after")
    def _consistent_privacy(self) -> AggregatorPrivacySettings:  # noqa: C901 (one check per line)
        if self.dp == "off":
            if self.target_epsilon is not None:
                raise ValueError("--target-epsilon needs --dp central, local or distributed")
            return self
        if getattr(self, "sample_weighting", None):
            raise ValueError(
                "--dp needs unit weights: example counts are private (drop --sample-weighting)"
            )
        if getattr(self, "norm_bound", None) is not None:
            raise ValueError(
                "--dp cannot be combined with --norm-bound: its running median lets one worker's "
                "norms decide others' updates, and that is not accounted"
            )
        if self.target_epsilon is not None and getattr(self, "checkpoint", True) is False:
            raise ValueError(
                "--dp with --target-epsilon needs checkpointing: without it a restart resets the "
                "epsilon spent (drop --no-checkpoint)"
            )
        if self.dp == "central" and getattr(self, "strategy", "") == "fedbuff":
            workers = int(getattr(self, "num_partitions", 1))
            buffer_size = int(getattr(self, "buffer_size", 1))
            if buffer_size > workers:
                raise ValueError(
                    f"DP FedBuff takes each worker once per release: --buffer-size {buffer_size} "
                    f"needs at least {buffer_size} workers (--num-partitions is {workers})"
                )
        if self.dp_adaptive_clip and (self.dp != "central" or self.dp_client_clip):
            raise ValueError(
                "adaptive clipping needs the aggregator to see unclipped norms (only with --dp "
                "central, without --dp-client-clip)"
            )
        if self.dp_adaptive_clip:
            per_release = (
                getattr(self, "buffer_size", 1) if getattr(self, "strategy", "") == "fedbuff" else 1
            )
            update_noise_multiplier(
                self.dp_noise_multiplier, self.dp_count_stddev or default_count_stddev(per_release)
            )
        return self

    @model_validator(mode="after")
    def _distributed_needs_secure_aggregation(self) -> AggregatorPrivacySettings:
        if self.dp != "distributed":
            return self
        secure_clip = getattr(self, "secure_clip", self.dp_clip)
        refusals = {
            "--dp distributed needs --secure-aggregation (the workers' noise is only private "
            "inside a masked sum)": not getattr(self, "secure_aggregation", False),
            "--dp distributed needs --dp-noise-multiplier above 0": self.dp_noise_multiplier <= 0,
            "--dp distributed: workers clip to --dp-clip; drop --secure-clip or give it the same "
            "value": "secure_clip" in self.model_fields_set and secure_clip != self.dp_clip,
            "--dp distributed: workers clip anyway, drop --dp-client-clip": self.dp_client_clip,
            "--dp distributed: the noise is drawn by the workers from OS entropy, drop --dp-seed": (
                self.dp_seed is not None
            ),
        }
        for message, refused in refusals.items():
            if refused:
                raise ValueError(message)
        return self


class WorkerPrivacySettings(BaseModel):
    """Record-level DP-SGD in the built-in trainers (the worker protects each of its examples)."""

    dpsgd: bool = Field(
        False,
        description="DP-SGD in the built-in trainer: Poisson sampling, per-example clips, noise.",
    )
    dpsgd_clip: float = Field(1.0, gt=0, description="DP-SGD: per-example gradient L2 bound C.")
    dpsgd_noise_multiplier: float = Field(
        1.0, ge=0, description="DP-SGD: z; each step adds N(0, (zC)^2) to the batch sum."
    )
    dpsgd_delta: float = Field(
        1e-5, gt=0, lt=1, description="DP-SGD: the delta the reported epsilon is at."
    )
    dpsgd_accountant: Literal["rdp", "pld"] = Field(
        "rdp", description="DP-SGD accountant: rdp (fast) or pld (tighter)."
    )
    dpsgd_target_epsilon: float | None = Field(
        None,
        gt=0,
        description=(
            "DP-SGD budget (torch trainer): refuse a fit that would take epsilon past it."
        ),
    )
    dpsgd_seed: int | None = Field(
        None,
        ge=0,
        description="DP-SGD sampling and noise seed, for tests only (default: OS entropy).",
    )
    dpsgd_ledger: str | None = Field(
        None,
        description=(
            "DP-SGD: file keeping this worker's spending across restarts (without it, it restarts "
            "at zero)."
        ),
    )

    local_dp_min_noise: float | None = Field(
        None,
        gt=0,
        description=(
            "Local DP: refuse to train unless the model asks for local noise with at least this "
            "multiplier z (the aggregator cannot switch it off)."
        ),
    )
    secure_dp_min_noise: float | None = Field(
        None,
        gt=0,
        description=(
            "Secure aggregation: refuse a buffer unless it asks for distributed DP noise with at "
            "least this multiplier z (the aggregator cannot leave the noise out)."
        ),
    )
    local_dp_budget: float | None = Field(
        None,
        gt=0,
        description="Local DP: this worker's own epsilon budget; it stops before exceeding it.",
    )
    local_dp_delta: float = Field(
        1e-5, gt=0, lt=1, description="Local DP: the delta this worker's epsilon is reported at."
    )
    local_dp_ledger: str | None = Field(
        None,
        description="Local DP: file keeping this worker's own spending (needed with a budget).",
    )

    @model_validator(mode="after")
    def _local_budget_needs_a_ledger(self) -> WorkerPrivacySettings:
        if self.local_dp_budget is not None and not self.local_dp_ledger:
            raise ValueError(
                "--local-dp-budget needs --local-dp-ledger: without it a restart forgets the "
                "epsilon spent"
            )
        return self

    def local_guard(self) -> LocalGuard:
        """The worker's own local-DP terms (its ledger file is read now, if it exists)."""
        return local_guard(
            min_noise=self.local_dp_min_noise,
            budget=self.local_dp_budget,
            delta=self.local_dp_delta,
            ledger=self.local_dp_ledger,
        )

    def dpsgd_options(self) -> dict[str, str | int | float | bool]:
        """Trainer options for the built-in trainer (empty when DP-SGD is off)."""
        if not self.dpsgd:
            return {}
        options: dict[str, str | int | float | bool] = {
            "dpsgd": True,
            "dpsgd_clip": self.dpsgd_clip,
            "dpsgd_noise_multiplier": self.dpsgd_noise_multiplier,
            "dpsgd_delta": self.dpsgd_delta,
            "dpsgd_accountant": self.dpsgd_accountant,
        }
        if self.dpsgd_seed is not None:
            options["dpsgd_seed"] = self.dpsgd_seed
        if self.dpsgd_target_epsilon is not None:
            options["dpsgd_target_epsilon"] = self.dpsgd_target_epsilon
        if self.dpsgd_ledger:
            options["dpsgd_ledger"] = self.dpsgd_ledger
        return options
