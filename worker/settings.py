"""Worker configuration: environment (``FEDMQ_*``) and flags, one model."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, model_validator

from broker.settings import BrokerSettings
from privacy.settings import WorkerPrivacySettings
from runtime.observability import ObservabilitySettings
from training.settings import TaskSettings


def default_worker_id() -> str:
    """Host name and process id: unique enough for ad-hoc workers, stable for none."""
    host = (
        "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())[:40]
        or "worker"
    )
    return f"{host}-{os.getpid()}"


class WorkerSettings(ObservabilitySettings, TaskSettings, BrokerSettings, WorkerPrivacySettings):
    """A worker: who it is, which partition it trains on, how it behaves."""

    worker_id: str = Field(
        default_factory=default_worker_id,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
        description="Identity in updates and in the name of the worker's model queue.",
    )
    partition_index: int = Field(
        0, ge=0, description="Which partition of the data this worker owns."
    )
    claim_partition: bool = Field(
        False,
        description=(
            "Claim the first free partition on the broker instead of --partition-index (scaled "
            "replicas); stand by while all are taken."
        ),
    )
    delay: float = Field(
        0.0, ge=0, description="Emulate a slow device: seconds added to every fit."
    )
    slowdown: float = Field(
        1.0, ge=1.0, description="Emulate a slow device: fit takes this many times longer."
    )
    fresh_wait: float = Field(
        0.05,
        ge=0,
        description=(
            "After an update, wait up to this long (and at most half a fit) for a newer version "
            "before retraining."
        ),
    )
    max_updates: int | None = Field(
        None, ge=1, description="Stop after this many confirmed updates."
    )
    events_file: str | None = Field(
        None,
        description=(
            "Append a JSON line per event (attached, training, confirmed, publish-refused, "
            "abandoned, dropped) here."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def trainer_options(self) -> dict[str, str | int | float | bool]:
        return {**super().trainer_options(), **self.dpsgd_options()}

    @model_validator(mode="after")
    def _partition_in_range(self) -> WorkerSettings:
        if self.partition_index >= self.num_partitions:
            raise ValueError(
                f"partition_index {self.partition_index} must be below num_partitions "
                f"{self.num_partitions}"
            )
        return self
