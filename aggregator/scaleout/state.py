"""The root's checkpoint: the model, its version and the update ids of every committed step, in
one file written by atomic rename, so a crashed root resumes exactly where its last commit left.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.weights import Weights

#: The array in the checkpoint that holds the step log (JSON text), next to the model's arrays.
STEPS_KEY = "__steps__"
FILE = "root.npz"
#: One JSON line per committed version (time, version, updates, edges): for operators and benches.
COMMITS = "commits.jsonl"


@dataclass
class RootState:
    """``steps[v - 1]``: the sorted update ids of version ``v``."""

    model: Weights
    steps: list[list[str]] = field(default_factory=list)

    @property
    def version(self) -> int:
        return len(self.steps)

    def applied(self) -> set[str]:
        return {uid for step in self.steps for uid in step}


def save(state_dir: Path, state: RootState) -> None:
    """Write the checkpoint (model and step log together) and rename it into place."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{FILE}.tmp"
    with open(tmp, "wb") as out:
        arrays = {**state.model, STEPS_KEY: np.array(json.dumps(state.steps))}
        np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds poorly
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, state_dir / FILE)


def load(state_dir: Path, initial: Weights) -> RootState:
    """The last committed state, or ``initial`` at version 0 if there is none."""
    path = state_dir / FILE
    if not path.exists():
        return RootState({k: v.copy() for k, v in initial.items()})
    with np.load(path, allow_pickle=False) as data:
        steps = json.loads(str(data[STEPS_KEY]))
        model = {name: np.array(data[name]) for name in data.files if name != STEPS_KEY}
    return RootState(model, [list(s) for s in steps])


def note_commit(state_dir: Path, version: int, updates: int, edges: int) -> None:
    """Append a line for a committed version (after the checkpoint: the checkpoint is the truth)."""
    line = {"time": time.time(), "version": version, "updates": updates, "edges": edges}
    with open(state_dir / COMMITS, "a") as out:
        out.write(json.dumps(line) + "\n")


def read_commits(state_dir: Path) -> list[dict[str, float]]:
    path = state_dir / COMMITS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
