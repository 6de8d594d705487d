"""The run's final artefacts, ``final_model.npz`` and ``summary.json``, written once.

The summary is computed when the run finishes and checkpointed with the
finished state, so a restart after the end (compose restarts an aggregator
that was SIGKILLed just after finishing) writes what is missing from that very
copy and leaves what exists as it was, instead of a summary of an empty
restart (no accuracy, no workers, zero rates).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.weights import Weights

MODEL_FILE = "final_model.npz"
SUMMARY_FILE = "summary.json"
#: Where the finished state keeps the summary (``AggregatorState.extra``).
SUMMARY_KEY = "summary"


def save_artefacts(
    run_path: Path, weights: Weights, summary: Mapping[str, Any], *, replace: bool
) -> list[str]:
    """Write both files (``replace``: the run has just finished) or whichever is missing (a restart
    after the end); the names written.
    """
    written = []
    model = run_path / MODEL_FILE
    if replace or not model.exists():
        np.savez(model, **weights)  # type: ignore[arg-type]
        written.append(MODEL_FILE)
    path = run_path / SUMMARY_FILE
    if replace or not path.exists():
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dict(summary), indent=2))
        os.replace(tmp, path)  # a crash mid-write leaves no half summary to be kept for good
        written.append(SUMMARY_FILE)
    return written
