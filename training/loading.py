"""Find and build the configured trainer: ``builtin`` or ``package.module:factory``."""

from __future__ import annotations

import importlib
from typing import cast

from training.settings import TaskSettings
from training.trainer import Role, Trainer, TrainerContext, TrainerFactory

#: The trainer ``--trainer builtin`` names.
BUILTIN = "tasks.builtin:make_trainer"


def load_factory(path: str) -> TrainerFactory:
    """Resolve ``builtin`` or ``package.module:attribute`` to a trainer factory."""
    if path == "builtin":
        path = BUILTIN
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"trainer {path!r} is not of the form package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load trainer {path!r}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"trainer {path!r} is not callable")
    return cast(TrainerFactory, factory)


def load_trainer(
    settings: TaskSettings, *, role: Role, partition: int, model_seed: int = 0
) -> Trainer:
    """Build the configured trainer for this process's role and partition (data split seeded by
    ``data_seed``).
    """
    return build_trainer(
        load_factory(settings.trainer), settings, role=role, partition=partition,
        model_seed=model_seed,
    )  # fmt: skip


def build_trainer(
    factory: TrainerFactory,
    settings: TaskSettings,
    *,
    role: Role,
    partition: int,
    model_seed: int = 0,
) -> Trainer:
    """Call ``factory`` with the context these task settings give this role and partition."""
    context = TrainerContext(
        role=role,
        partition=partition,
        num_partitions=settings.num_partitions,
        seed=settings.data_seed,
        options=settings.trainer_options(),
        model_seed=model_seed,
    )
    return factory(context)
