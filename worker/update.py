"""Turn a local training result into the update message the aggregator asked for."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np

from privacy.clipping import clip_update
from privacy.noise import add_gaussian_noise
from schemas.messages import ClientUpdate, MetricValue, ModelVersion, UpdateKind
from training.trainer import FitResult, Weights


def update_arrays(base: Weights, trained: Weights, kind: UpdateKind) -> Weights:
    """The trained weights, or their difference from the base, in the base's dtypes."""
    if kind == "weights":
        return {name: np.asarray(trained[name], dtype=base[name].dtype) for name in base}
    return {name: (np.asarray(trained[name], dtype=base[name].dtype) - base[name]) for name in base}


def protect_update(
    arrays: Weights, instructions: Mapping[str, MetricValue], rng: np.random.Generator
) -> Weights:
    """Clip a delta to ``dp_clip`` and, in local-DP mode, add N(0, (z C)^2) before it leaves the worker."""
    clip = instructions.get("dp_clip")
    if not isinstance(clip, (int, float)) or isinstance(clip, bool):
        return arrays
    protected = clip_update(arrays, float(clip)).arrays
    z = instructions.get("dp_local_noise_multiplier")
    if isinstance(z, (int, float)) and not isinstance(z, bool) and z > 0:
        add_gaussian_noise(protected, float(z) * float(clip), rng)
    return protected


def new_update_id() -> str:
    """A fresh, unique update id (a retry of the same update reuses it)."""
    return uuid.uuid4().hex


def build_update(
    worker_id: str,
    model: ModelVersion,
    fit: FitResult,
    train_seconds: float,
    *,
    rng: np.random.Generator | None = None,
) -> ClientUpdate:
    """The ``ClientUpdate`` for ``fit``, trained from ``model`` (clipped/noised if the model's config says so)."""
    kind = model.config.update_kind
    arrays = update_arrays(model.arrays, fit.weights, kind)
    if kind == "delta" and model.config.extra:
        arrays = protect_update(arrays, model.config.extra, rng or np.random.default_rng())
    return ClientUpdate(
        update_id=new_update_id(),
        worker_id=worker_id,
        base_version=model.version,
        num_examples=fit.num_examples,
        update_kind=kind,
        train_seconds=train_seconds,
        metrics=dict(fit.metrics),
        arrays=arrays,
    )
