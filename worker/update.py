"""Turn a local training result into the update message the aggregator asked for."""

from __future__ import annotations

import uuid

import numpy as np

from schemas.messages import ClientUpdate, ModelVersion, UpdateKind
from worker.trainer import FitResult, Weights


def update_arrays(base: Weights, trained: Weights, kind: UpdateKind) -> Weights:
    """The trained weights, or their difference from the base, in the base's dtypes."""
    if kind == "weights":
        return {name: np.asarray(trained[name], dtype=base[name].dtype) for name in base}
    return {name: (np.asarray(trained[name], dtype=base[name].dtype) - base[name]) for name in base}


def new_update_id() -> str:
    """A fresh, unique update id (a retry of the same update reuses it)."""
    return uuid.uuid4().hex


def build_update(worker_id: str, model: ModelVersion, fit: FitResult, train_seconds: float) -> ClientUpdate:
    """The ``ClientUpdate`` for ``fit``, trained from ``model``."""
    kind = model.config.update_kind
    return ClientUpdate(
        update_id=new_update_id(),
        worker_id=worker_id,
        base_version=model.version,
        num_examples=fit.num_examples,
        update_kind=kind,
        train_seconds=train_seconds,
        metrics=dict(fit.metrics),
        arrays=update_arrays(model.arrays, fit.weights, kind),
    )
