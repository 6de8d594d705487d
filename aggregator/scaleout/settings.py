"""What an edge and the root are told: the broker, the federation's shape, the step rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from broker.settings import BrokerSettings
from training.weights import Weights


@dataclass(frozen=True)
class ScaleoutSettings:
    """Shared by the edges and the root; ``init``: the initial model (``.npz``), which fixes the
    arrays updates must match."""

    broker: BrokerSettings
    edges: int
    init: Path
    #: Deliveries an edge may hold unacknowledged: at least its share of a step, with room.
    prefetch: int = 256

    def initial_model(self) -> Weights:
        with np.load(self.init, allow_pickle=False) as data:
            return {name: np.array(data[name]) for name in data.files}


@dataclass(frozen=True)
class RootSettings:
    """The root: ``buffer_size`` updates a step, ``max_versions`` steps, state in ``state_dir``."""

    common: ScaleoutSettings
    state_dir: Path
    buffer_size: int = 10
    server_lr: float = 1.0
    max_versions: int = 100
