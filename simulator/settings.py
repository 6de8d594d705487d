"""Simulation configuration: the aggregator's settings (same strategy, same trainer) plus the
workload.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from aggregator.settings import AggregatorSettings
from simulator.distributions import parse_distribution
from simulator.workload import parse_speeds

#: Aggregator settings that only concern a broker or a disk; ``fedmq simulate`` has no flags for
#: them.
SERVICE_ONLY = frozenset(
    {
        "amqp_url",
        "namespace",
        "heartbeat",
        "connect_attempts",
        "connect_backoff_max",
        "max_message_bytes",
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
        "state_dir",
        "checkpoint",
        "prefetch",
        "max_batch",
        "progress_interval",
        "audit_digests",
        "run_dir",
    }
)


class SimulationSettings(AggregatorSettings):
    """A federation on a virtual clock. Times are virtual seconds."""

    clients: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description=(
            "Simulated clients (default: num_partitions); client i trains partition i mod "
            "num_partitions."
        ),
    )
    workload: Literal["closed", "poisson", "trace"] = Field(
        "closed",
        description="closed: every client trains again as soon as it uploads (like fedmq workers); "
        "poisson: participations arrive at --arrival-rate, each by a random idle client; trace: "
        "from --trace-file.",
    )
    arrival_rate: float = Field(
        10.0, gt=0, description="poisson: participations per virtual second."
    )
    join_rate: float | None = Field(
        None,
        gt=0,
        description="closed: clients join at this Poisson rate (default: all at time 0).",
    )
    session_updates: int | None = Field(
        None, ge=1, description="closed: a client leaves after this many updates."
    )
    trace_file: str | None = Field(
        None, description="trace: CSV with header time,client[,duration]."
    )
    duration: str = Field(
        "constant:1",
        description=(
            "Fit time of a speed-1 client: constant:x, uniform:a,b, exponential:m, "
            "lognormal:mu,s, gamma:k,t."
        ),
    )
    speeds: str = Field(
        "1", description="Slowdown factors cycled over the clients, e.g. 1,1,1,1,1,1,5,10."
    )
    speed_distribution: str | None = Field(
        None, description="Draw each client's slowdown from this distribution instead."
    )
    latency: float = Field(
        0.0, ge=0, description="Seconds from a client's upload to the aggregator applying it."
    )
    max_updates: int | None = Field(
        None, ge=1, description="Stop after this many updates have been handled."
    )
    sim_seed: int = Field(0, ge=0, description="Seed of arrivals, durations and client choice.")
    output: str | None = Field(
        None, description="Write the result (summary and accuracy curve) as JSON here."
    )

    @field_validator("duration", "speed_distribution")
    @classmethod
    def _distribution(cls, value: str | None) -> str | None:
        if value is not None:
            parse_distribution(value)
        return value

    @field_validator("speeds")
    @classmethod
    def _speeds(cls, value: str) -> str:
        parse_speeds(value)
        return value

    @model_validator(mode="after")
    def _trace_needs_file(self) -> SimulationSettings:
        if self.workload == "trace" and not self.trace_file:
            raise ValueError("workload trace needs --trace-file")
        return self

    @property
    def client_count(self) -> int:
        return self.clients or self.num_partitions
