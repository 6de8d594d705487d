"""fedmq's benchmarks: ``python -m bench`` runs them all and prints one markdown table of ratios.

Every benchmark compares fedmq with a baseline measured in the same run
(memcpy, pickle, a raw pika relay, synchronous FedAvg), because on a shared,
noisy machine only ratios taken side by side mean something.

A module ``bench/<name>.py`` joins the table by defining
``run(ctx: Context) -> Iterable[Row]``; ``python -m bench --only <name>`` runs one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the table: fedmq's figure, the baseline's, their ratio and the floor it must
    meet.
    """

    benchmark: str
    case: str
    measured: str
    baseline: str = ""
    ratio: float | None = None
    floor: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Context:
    """What every benchmark gets: quick (smoke) or full, the broker, a scratch directory."""

    quick: bool
    workdir: Path
    amqp_url: str = field(
        default_factory=lambda: os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    )

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def at_least(ratio: float, floor: float) -> bool:
    return ratio >= floor


def at_most(ratio: float, ceiling: float) -> bool:
    return ratio <= ceiling
