"""Drive a scale-out federation (a root and edges as real processes) with seeded updates, and
replay its step log on one exact buffer: what a single aggregator makes of the same arrivals.

Updates are published as a worker would (inbox exchange, routing key ``update``, the
worker id in the ``fedmq-worker`` header) and the consistent-hash exchange spreads them
over the edge queues by worker. The root's checkpoint says which ids each version holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aggregator.core.partial import Partial, fixed_terms, step_with
from aggregator.core.staleness import Polynomial
from aggregator.scaleout.state import RootState, load
from broker.connection import AmqpSession
from broker.names import UPDATE_KEY
from broker.properties import update_properties
from broker.settings import BrokerSettings
from schemas.codec import encode
from schemas.messages import ClientUpdate
from training.weights import Weights


def initial_model(floats: int) -> Weights:
    """A model of ``floats`` float32 weights (one matrix and a bias), seeded."""
    rng = np.random.default_rng(1)
    cols = max(1, min(floats // 2, 1000))
    rows = max(1, (floats - cols) // cols)
    return {
        "w": rng.normal(0, 0.1, (rows, cols)).astype(np.float32),
        "b": np.zeros(cols, np.float32),
    }


def seeded_updates(model: Weights, count: int, workers: int, seed: int) -> list[ClientUpdate]:
    """``count`` deltas from ``workers`` workers; base versions spread so staleness varies."""
    rng = np.random.default_rng(seed)
    return [
        ClientUpdate(
            update_id=f"upd-{seed}-{i:06d}",
            worker_id=f"w{i % workers}",
            base_version=int(rng.integers(0, 1 + i // 8)),
            num_examples=int(rng.integers(10, 500)),
            update_kind="delta",
            train_seconds=0.0,
            arrays={k: rng.normal(0, 0.01, v.shape).astype(v.dtype) for k, v in model.items()},
        )
        for i in range(count)
    ]


def publish(settings: BrokerSettings, updates: Iterable[ClientUpdate]) -> int:
    """Publish each update with confirms, as its worker would; how many."""
    sent = 0
    with AmqpSession(settings, name="fedmq-scaleout-load") as session:
        inbox = f"{settings.namespace}.inbox"
        for u in updates:
            props = update_properties(
                u.update_id, session.username, u.base_version, worker_id=u.worker_id
            )
            session.publish(inbox, UPDATE_KEY, encode(u), props)
            sent += 1
    return sent


def replay(
    model: Weights, steps: list[list[str]], updates: dict[str, ClientUpdate], lr: float
) -> Weights:
    """One aggregator, one exact buffer: version v steps with the ids the log gives it, each
    update's staleness counted against version v - 1 (as the edges count it)."""
    out = {k: v.copy() for k, v in model.items()}
    weight = Polynomial(0.5)
    for version, ids in enumerate(steps, start=1):
        terms = []
        for uid in ids:
            u = updates[uid]
            staleness = max(0, version - 1 - u.base_version)
            terms.append(
                (uid, fixed_terms(u.arrays, weight(staleness) * u.num_examples), u.num_examples)
            )
        step_with(out, Partial.of(terms), lr)
    return out


def same_bits(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


@dataclass
class ScaleoutRun:
    """A root and ``edges`` edge processes on one namespace; logs and the root's state in
    ``run_dir``."""

    settings: BrokerSettings
    run_dir: Path
    edges: int
    buffer_size: int
    max_versions: int
    extra: list[str] = field(default_factory=list)
    root: subprocess.Popen[bytes] | None = None
    edge_procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def init(self) -> Path:
        return self.run_dir / "init.npz"

    @property
    def state_dir(self) -> Path:
        return self.run_dir / "root-state"

    def write_init(self, model: Weights) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        np.savez(self.init, **model)  # type: ignore[arg-type]  # numpy's stub types **kwds poorly

    def _spawn(self, role: str, log_name: str, *flags: str) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable, "-m", "aggregator.scaleout", role,
            "--edges", str(self.edges), "--init", str(self.init),
            "--amqp-url", self.settings.amqp_url, "--namespace", self.settings.namespace,
            *self.extra, *flags,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.run_dir / log_name, "ab") as log:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def start_root(self) -> subprocess.Popen[bytes]:
        self.root = self._spawn(
            "root", "root.log",
            "--state-dir", str(self.state_dir), "--buffer-size", str(self.buffer_size),
            "--max-versions", str(self.max_versions),
        )  # fmt: skip
        return self.root

    def start_edge(self, index: int) -> subprocess.Popen[bytes]:
        self.edge_procs[index] = self._spawn("edge", f"edge-{index}.log", "--index", str(index))
        return self.edge_procs[index]

    def start(self) -> None:
        for i in range(self.edges):
            self.start_edge(i)
        self.start_root()

    def state(self, model: Weights) -> RootState:
        return load(self.state_dir, model)

    def version(self) -> int:
        return self.state({}).version if (self.state_dir / "root.npz").exists() else 0

    def procs(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in [self.root, *self.edge_procs.values()] if p is not None]

    def log(self, name: str) -> str:
        path = self.run_dir / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        for p in self.procs():
            if p.poll() is None:
                p.kill()
        for p in self.procs():
            p.wait(timeout=10)
