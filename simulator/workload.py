"""Who trains when: client speeds, Poisson arrivals, and participation traces (pure)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.distributions import Distribution


@dataclass(frozen=True)
class Participation:
    """A client becomes available at ``time``, trains once, uploads (``duration``: from the trace,
    or drawn).
    """

    time: float
    client: int
    duration: float | None = None


def client_speeds(
    count: int, factors: list[float], distribution: Distribution | None, rng: np.random.Generator
) -> np.ndarray:
    """Each client's slowdown: drawn from ``distribution``, else ``factors`` cycled over the
    clients.
    """
    if distribution is not None:
        return np.array([max(distribution.sample(rng), 1e-9) for _ in range(count)])
    return np.array([factors[i % len(factors)] for i in range(count)], dtype=np.float64)


def poisson_times(rate: float, start: float, rng: np.random.Generator) -> float:
    """The next event of a Poisson process of ``rate`` per second after ``start``."""
    return start + float(rng.exponential(1.0 / rate))


def parse_speeds(text: str) -> list[float]:
    try:
        factors = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"speeds {text!r} is not a comma-separated list of numbers") from None
    if not factors or min(factors) <= 0:
        raise ValueError("speeds must be positive")
    return factors


def read_trace(path: str | Path, clients: int) -> list[Participation]:
    """A CSV with header ``time,client,duration`` (an empty duration is drawn), sorted by time."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"time", "client"} <= set(reader.fieldnames):
            raise ValueError(
                f"trace {path}: needs a header with at least time,client (and optionally duration)"
            )
        for line, row in enumerate(reader, start=2):
            try:
                client = int(row["client"])
                time = float(row["time"])
                duration = float(row["duration"]) if row.get("duration") not in (None, "") else None
            except ValueError:
                raise ValueError(
                    f"trace {path} line {line}: time, client and duration must be numbers"
                ) from None
            if not 0 <= client < clients or time < 0 or (duration is not None and duration < 0):
                raise ValueError(
                    f"trace {path} line {line}: client must be in [0, {clients}), times "
                    f"non-negative"
                )
            rows.append(Participation(time, client, duration))
    return sorted(rows, key=lambda p: (p.time, p.client))
