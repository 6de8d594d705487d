"""Worker configuration: environment (``FEDMQ_*``) and flags, one model."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, model_validator

from broker.settings import DEFAULT_AMQP_URL, GUEST, BrokerSettings, amqp_user
from privacy.settings import WorkerPrivacySettings
from runtime.observability import ObservabilitySettings
from training.settings import TaskSettings


def default_worker_id(amqp_url: str | None = None) -> str:
    """A provisioned worker's id is its AMQP user: stable, and what the broker vouches for. As the
    shared ``guest`` (the demo): host name and process id, unique enough for ad-hoc workers.
    """
    user = amqp_user(amqp_url or DEFAULT_AMQP_URL)
    if user != GUEST:
        return user
    host = (
        "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())[:40]
        or "worker"
    )
    return f"{host}-{os.getpid()}"


class WorkerSettings(ObservabilitySettings, TaskSettings, BrokerSettings, WorkerPrivacySettings):
    """A worker: who it is, which partition it trains on, how it behaves."""

    worker_id: str = Field(
        default_factory=lambda data: default_worker_id(data.get("amqp_url")),
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
        description=(
            "Identity in updates and in the name of the worker's model queue (default: the AMQP "
            "user, which it must be unless that is guest)."
        ),
    )
    aggregator_user: str | None = Field(
        None,
        description=(
            "Accept models only from this broker-validated user (default: <namespace>-aggregator, "
            "as `fedmq broker init` names it; unchecked as guest, where everyone is guest)."
        ),
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

    def model_sender(self) -> str | None:
        """The user model versions must come from, or ``None`` (the shared guest: no check)."""
        if self.aggregator_user is not None:
            return self.aggregator_user
        return None if self.shared_guest else f"{self.namespace}-aggregator"

    @model_validator(mode="after")
    def _provisioned_identity(self) -> WorkerSettings:
        if not self.shared_guest and self.worker_id != self.amqp_user:
            raise ValueError(
                f"worker_id {self.worker_id!r} must be the AMQP user {self.amqp_user!r} (or left "
                "out): the aggregator refuses updates whose worker id is not the validated user"
            )
        return self

    @model_validator(mode="after")
    def _partition_in_range(self) -> WorkerSettings:
        if self.partition_index >= self.num_partitions:
            raise ValueError(
                f"partition_index {self.partition_index} must be below num_partitions "
                f"{self.num_partitions}"
            )
        return self
