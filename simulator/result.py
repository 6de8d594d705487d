"""What a simulation produced: the same summary fields as a real run, plus the accuracy curve."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.engine import Simulation


@dataclass(frozen=True)
class SimulationResult:
    stopped_because: str
    virtual_seconds: float
    wall_seconds: float
    clients: int
    version: int
    handled: int
    applied: int
    rejected: dict[str, int]
    dropped_arrivals: int
    accuracy: float | None
    loss: float | None
    time_to_target: float | None
    staleness_mean: float
    staleness_max: int
    stale_share: float
    staleness_histogram: dict[int, int]
    curve: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def collect(cls, sim: Simulation, wall_seconds: float) -> SimulationResult:
        last = sim.curve[-1] if sim.curve else {}
        counters = sim.core.state.counters
        return cls(
            stopped_because=sim.stopped_because,
            virtual_seconds=round(sim.now, 6),
            wall_seconds=round(wall_seconds, 3),
            clients=len(sim.clients),
            version=sim.core.state.version,
            handled=sim.handled,
            applied=counters.applied,
            rejected=dict(counters.rejected),
            dropped_arrivals=sim.dropped_arrivals,
            accuracy=last.get("accuracy"),
            loss=last.get("loss"),
            time_to_target=sim.time_to_target,
            staleness_mean=round(sim.staleness.mean, 4),
            staleness_max=sim.staleness.maximum,
            stale_share=round(sim.staleness.positive_share(), 4),
            staleness_histogram=dict(sorted(sim.staleness.histogram.items())),
            curve=list(sim.curve),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def updates_per_virtual_second(self) -> float:
        return self.handled / self.virtual_seconds if self.virtual_seconds > 0 else 0.0
