"""Turn a local training result into the update message the aggregator asked for."""

from __future__ import annotations

import uuid

import numpy as np

from privacy.clipping import clip_update
from privacy.noise import add_gaussian_noise
from schemas.compression import compress
from schemas.messages import ClientPrivacy, ClientUpdate, ModelVersion, UpdateKind
from training.trainer import FitResult
from training.weights import Weights, float_entries


def update_arrays(base: Weights, trained: Weights, kind: UpdateKind) -> Weights:
    """The trained weights, or their difference from the base, in the base's dtypes."""
    if kind == "weights":
        return {name: np.asarray(trained[name], dtype=base[name].dtype) for name in base}
    return {name: (np.asarray(trained[name], dtype=base[name].dtype) - base[name]) for name in base}


def protect_update(
    arrays: Weights, privacy: ClientPrivacy | None, rng: np.random.Generator
) -> Weights:
    """Clip a delta to ``privacy.clip`` and, in local DP, add N(0, (z C)^2) before it leaves."""
    if privacy is None:
        return arrays
    protected = clip_update(arrays, privacy.clip).arrays
    if privacy.noise_multiplier > 0:
        # Integer entries are never aggregated (training.weights.aggregated): no noise to add there.
        add_gaussian_noise(float_entries(protected), privacy.noise_multiplier * privacy.clip, rng)
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
    residual: dict[str, np.ndarray] | None = None,
) -> ClientUpdate:
    """The ``ClientUpdate`` for ``fit``, trained from ``model`` (clipped/noised, then compressed, if
    the model's config says so). ``residual``: what top-k left unsent so far (error feedback).
    """
    kind, rng = model.config.update_kind, rng or np.random.default_rng()
    arrays = update_arrays(model.arrays, fit.weights, kind)
    if kind == "delta" and model.config.privacy is not None:
        arrays = protect_update(arrays, model.config.privacy, rng)
    spec = model.config.compression
    packed = compress(arrays, spec.mode, rng=rng, fraction=spec.topk_fraction, residual=residual)
    return ClientUpdate(
        update_id=new_update_id(),
        worker_id=worker_id,
        base_version=model.version,
        num_examples=fit.num_examples,
        update_kind=kind,
        train_seconds=train_seconds,
        metrics=dict(fit.metrics),
        compression=spec.mode,
        scales=packed.scales,
        arrays=packed.arrays,
    )
