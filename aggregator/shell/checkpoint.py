"""Atomic checkpoints of the aggregator state (temp file, fsync, rename, fsync dir).

A checkpoint is one fedmq frame (``schemas.codec.pack_frame``): a msgpack
header with the scalars and update-id window, and the model and strategy
arrays as raw bytes. A crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.core.state import AggregatorState, AppliedWindow, Counters
from schemas.codec import Limits, frame_parts, unpack_frame
from schemas.errors import DecodeError

CHECKPOINT_NAME = "checkpoint.fmq"
FORMAT = "fedmq-checkpoint"
FORMAT_VERSION = 1
_MODEL, _STRATEGY = "model/", "strategy/"


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read: refuse to start rather than lose state."""


def checkpoint_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / CHECKPOINT_NAME


def save_checkpoint(
    state_dir: str | os.PathLike[str],
    state: AggregatorState,
    strategy_state: tuple[dict[str, Any], Mapping[str, np.ndarray]],
) -> int:
    """Write the state durably; returns the bytes written."""
    scalars, strategy_arrays = strategy_state
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_id": state.run_id,
        "version": state.version,
        "commit": state.commit,
        "elapsed": state.elapsed,
        "finished": state.finished,
        "counters": state.counters.as_dict(),
        **window_fields(state.applied),
        "strategy": scalars,
        "extra": state.extra,
    }
    arrays = {_MODEL + k: v for k, v in state.weights.items()}
    arrays.update({_STRATEGY + k: v for k, v in strategy_arrays.items()})
    parts = frame_parts(header, arrays)  # streamed to the file: no model-sized body in memory
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # A name of its own: two writers (which the state lock should prevent) never share a temporary.
    final = directory / CHECKPOINT_NAME
    tmp = directory / f"{CHECKPOINT_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as fh:
        for part in parts:
            fh.write(part)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return sum(len(memoryview(part).cast("B")) for part in parts)


def remove_temporaries(state_dir: str | os.PathLike[str]) -> int:
    """Delete temporaries a crashed save left behind (call it holding the state lock); how many."""
    stale = list(Path(state_dir).glob(f"{CHECKPOINT_NAME}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load_checkpoint(
    state_dir: str | os.PathLike[str],
) -> tuple[AggregatorState, dict[str, Any], dict[str, np.ndarray]] | None:
    """The saved state and the strategy's (scalars, arrays), or ``None`` if there is none."""
    path = checkpoint_path(state_dir)
    if not path.exists():
        return None
    data = path.read_bytes()
    try:
        header, arrays = unpack_frame(
            data, Limits(max_message_bytes=len(data), max_header_bytes=len(data))
        )
    except DecodeError as exc:
        raise CheckpointError(
            f"{path} is unreadable ({exc}); move it away to start afresh"
        ) from exc
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a fedmq checkpoint of format {FORMAT_VERSION}")
    arrays = arrays or {}
    weights = {k[len(_MODEL) :]: np.array(v) for k, v in arrays.items() if k.startswith(_MODEL)}
    strategy_arrays = {
        k[len(_STRATEGY) :]: np.array(v) for k, v in arrays.items() if k.startswith(_STRATEGY)
    }
    state = AggregatorState(
        run_id=header["run_id"],
        version=int(header["version"]),
        weights=weights,
        applied=applied_window(header),
        counters=Counters.from_dict(header.get("counters", {})),
        commit=int(header.get("commit", 0)),
        elapsed=float(header.get("elapsed", 0.0)),
        finished=bool(header.get("finished", False)),
        extra=dict(header.get("extra", {})),
    )
    return state, dict(header.get("strategy", {})), strategy_arrays


def window_fields(window: AppliedWindow) -> dict[str, Any]:
    """The update-id window as the checkpoint's header holds it."""
    return {
        "applied_capacity": window.capacity,
        "applied_ids": window.ids(),
        "applied_bases": window.bases(),
        "applied_floor": window.floor,
    }


def applied_window(header: dict[str, Any]) -> AppliedWindow:
    """The update-id window; a checkpoint written before base versions were kept gives each id
    the checkpoint's version (kept longer than needed, never shorter).
    """
    ids = list(header["applied_ids"])
    bases = header.get("applied_bases") or [int(header["version"])] * len(ids)
    floor = int(header.get("applied_floor", -1))
    return AppliedWindow(int(header["applied_capacity"]), ids, bases=bases, floor=floor)
