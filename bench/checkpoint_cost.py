"""What one checkpoint costs at a model size, against the physical limit of writing its bytes.

fedmq's figure is one ``save_checkpoint`` exactly as the aggregator calls it
before every publish (the frame streamed to a temporary file, ``fsync``,
rename, ``fsync`` of the directory) of a FedAsync state holding a float32
model of the given size. The baseline is one plain ``write`` of the same
number of bytes from memory into a fresh file and one ``fsync``: what making
those bytes durable costs at the least. Best of a few alternating runs each.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.shell.checkpoint import CHECKPOINT_NAME, save_checkpoint

#: The update-id window of the benchmark's state (the ingest bench's aggregator holds about this).
WINDOW = 128


@dataclass(frozen=True)
class WriteCost:
    """One durable write: how long it took and how many bytes it wrote."""

    seconds: float
    nbytes: int

    @property
    def bytes_per_second(self) -> float:
        return self.nbytes / self.seconds


@dataclass(frozen=True)
class CheckpointCost:
    """The best checkpoint write and the best plain write of the same bytes."""

    checkpoint: WriteCost
    plain: WriteCost

    @property
    def ratio(self) -> float:
        """Checkpoint time over plain-write time (1.0: the checkpoint costs only its bytes)."""
        return self.checkpoint.seconds / self.plain.seconds


def checkpoint_write(directory: Path, floats: int) -> WriteCost:
    """One ``save_checkpoint`` of a FedAsync state with a ``floats``-element float32 model."""
    state = AggregatorState(
        run_id="bench",
        version=1,
        weights={"w": np.ones(floats, np.float32)},
        applied=AppliedWindow(WINDOW),
    )
    started = time.perf_counter()
    nbytes = save_checkpoint(directory, state, ({"updates": 1, "examples": 100}, {}))
    return WriteCost(time.perf_counter() - started, nbytes)


def plain_write(path: Path, payload: np.ndarray) -> WriteCost:
    """``payload``'s bytes written to a fresh ``path`` and fsynced: the least a durable write
    costs.
    """
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    with open(path, "wb") as fh:
        fh.write(payload.data)
        fh.flush()
        os.fsync(fh.fileno())
    return WriteCost(time.perf_counter() - started, payload.nbytes)


def checkpoint_cost(directory: Path, floats: int, repeat: int = 3) -> CheckpointCost:
    """Best of ``repeat`` checkpoint writes and plain writes of the same size, alternating."""
    directory.mkdir(parents=True, exist_ok=True)
    ours: list[WriteCost] = []
    plain: list[WriteCost] = []
    payload: np.ndarray | None = None
    for _ in range(repeat):
        ours.append(checkpoint_write(directory, floats))
        if payload is None:  # exactly the checkpoint's bytes, allocated once
            payload = np.ones(ours[-1].nbytes, np.uint8)
        plain.append(plain_write(directory / "plain.bin", payload))
    (directory / "plain.bin").unlink(missing_ok=True)
    (directory / CHECKPOINT_NAME).unlink(missing_ok=True)
    return CheckpointCost(min(ours, key=lambda c: c.seconds), min(plain, key=lambda c: c.seconds))
