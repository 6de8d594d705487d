"""The discrete-event run: Poisson arrivals through a broker node, an edge and the root's steps.

Each update arrives (its client downloaded the model ``train`` seconds
earlier), costs its broker node (drawn uniformly) ``(2R + 1)·S / node_mb_s``
seconds, then its edge (drawn uniformly: the hash over many workers)
``S / edge_mb_s``, then waits in the buffer until K are ready; the root
steps them in ``edges in the step · 2S / root_mb_s`` seconds, and the new
version costs a node (round robin) its partials and model bytes. Every
server is FIFO with one job at a time; time is virtual. A client that
downloaded before the run began counts the versions of that time as if the
federation had stepped at its offered rate (so staleness has no start-up
dip).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simulator.capacity.load import (
    Federation,
    Platform,
    root_seconds,
    update_node_mb,
    version_node_mb,
)
from simulator.distributions import parse_distribution
from simulator.events import EventQueue

Kind = Literal["arrive", "edge", "ready", "step"]


@dataclass
class Server:
    """A FIFO server: when it is next free, how long it has been busy, each job's wait."""

    free: float = 0.0
    busy: float = 0.0
    waits: list[tuple[float, float]] = field(default_factory=list)  # (arrival, wait)

    def serve(self, t: float, seconds: float) -> float:
        """Take a job arriving at ``t`` needing ``seconds``; when it is done."""
        start = max(t, self.free)
        self.waits.append((t, start - t))
        self.free = start + seconds
        self.busy += seconds
        return self.free


@dataclass(frozen=True)
class Spread:
    """Mean and percentiles of a sample (zeros for an empty one)."""

    mean: float
    p50: float
    p90: float
    p99: float

    @staticmethod
    def of(values: Sequence[float] | np.ndarray) -> Spread:
        a = np.asarray(values, dtype=np.float64)
        if a.size == 0:
            return Spread(0.0, 0.0, 0.0, 0.0)
        p50, p90, p99 = (float(np.percentile(a, q)) for q in (50, 90, 99))
        return Spread(float(a.mean()), p50, p90, p99)


@dataclass(frozen=True)
class Outcome:
    """What the run saw: counts (conservation), utilisation per server, waits, staleness."""

    arrivals: int
    applied: int
    buffered: int
    versions: int
    span: float
    nodes: tuple[float, ...]
    edges: tuple[float, ...]
    root: float
    waits: dict[str, Spread]
    staleness: Spread
    sojourn: Spread


@dataclass
class Tracks:
    """Per-update times and placements, indexed by update (drawn before the run)."""

    arrival: list[float]
    download: list[float]
    node: list[int]
    edge: list[int]
    ready: dict[int, float] = field(default_factory=dict)
    formed: dict[int, float] = field(default_factory=dict)  # when its step had its K


def draw(fed: Federation, plat: Platform, horizon: float, seed: int) -> Tracks:
    """Poisson arrivals on ``[0, horizon]`` (a Poisson count, uniform times), each with its
    download time, broker node and edge, all uniform."""
    rng = np.random.default_rng(seed)
    count = int(rng.poisson(fed.arrival_rate * horizon))
    arrival = np.sort(rng.uniform(0.0, horizon, count))
    train = parse_distribution(fed.train)
    download = [float(t) - train.sample(rng) for t in arrival]
    return Tracks(
        arrival=arrival.tolist(),
        download=download,
        node=rng.integers(plat.nodes, size=count).tolist(),
        edge=rng.integers(plat.edges, size=count).tolist(),
    )


class CapacityRun:
    """One seeded run of ``horizon`` virtual seconds of arrivals, drained to the end."""

    def __init__(self, fed: Federation, plat: Platform, *, horizon: float, seed: int) -> None:
        self.fed, self.plat, self.horizon = fed, plat, horizon
        self.nodes = [Server() for _ in range(plat.nodes)]
        self.edges = [Server() for _ in range(plat.edges)]
        self.root = Server()
        self.queue: EventQueue[tuple[Kind, tuple[int, ...]]] = EventQueue()
        self.tracks = draw(fed, plat, horizon, seed)
        self.pending: list[int] = []
        self.commits: list[float] = []
        self.applied: list[tuple[int, int, float]] = []  # (update, staleness, sojourn)
        self.now = 0.0

    def run(self) -> CapacityRun:
        if self.tracks.arrival:
            self.queue.push(self.tracks.arrival[0], ("arrive", (0,)))
        while len(self.queue):
            self.now, (kind, ids) = self.queue.pop()
            getattr(self, f"_{kind}")(ids)
        return self

    def _arrive(self, ids: tuple[int, ...]) -> None:
        uid = ids[0]
        node = self.nodes[self.tracks.node[uid]]
        seconds = update_node_mb(self.fed, self.plat) / self.plat.node_mb_s
        self.queue.push(node.serve(self.now, seconds), ("edge", ids))
        if uid + 1 < len(self.tracks.arrival):
            self.queue.push(self.tracks.arrival[uid + 1], ("arrive", (uid + 1,)))

    def _edge(self, ids: tuple[int, ...]) -> None:
        edge = self.edges[self.tracks.edge[ids[0]]]
        seconds = self.fed.model_mb / self.plat.edge_mb_s
        self.queue.push(edge.serve(self.now, seconds), ("ready", ids))

    def _ready(self, ids: tuple[int, ...]) -> None:
        self.pending.extend(ids)
        self.tracks.ready[ids[0]] = self.now
        k = self.fed.buffer_size
        while len(self.pending) >= k:
            batch, self.pending = tuple(self.pending[:k]), self.pending[k:]
            self.tracks.formed.update((uid, self.now) for uid in batch)
            seconds = root_seconds(self.fed, self.plat, self._edges_in(batch))
            self.queue.push(self.root.serve(self.now, seconds), ("step", batch))

    def _step(self, batch: tuple[int, ...]) -> None:
        self.commits.append(self.now)
        version = len(self.commits)
        mb = version_node_mb(self.fed, self.plat, self._edges_in(batch))
        self.nodes[version % len(self.nodes)].serve(self.now, mb / self.plat.node_mb_s)
        for uid in batch:
            base = self._version_at(self.tracks.download[uid], version - 1)
            self.applied.append((uid, version - 1 - base, self.now - self.tracks.arrival[uid]))

    def _version_at(self, t: float, known: int) -> int:
        """The version a client downloaded at ``t``: before the run (``t < 0``) the federation
        is taken to have stepped at the offered rate, so versions there count down from 0."""
        if t < 0:
            return -math.floor(-t * self.fed.version_rate)
        return bisect.bisect_right(self.commits, t, hi=known)

    def _edges_in(self, batch: tuple[int, ...]) -> int:
        return len({self.tracks.edge[uid] for uid in batch})

    def outcome(self, warmup: float) -> Outcome:
        """Counts over the whole run; waits, staleness and sojourn of updates arriving after
        ``warmup``."""
        late = {u for u, t in enumerate(self.tracks.arrival) if t >= warmup}
        applied = [a for a in self.applied if a[0] in late]
        span = max(self.now, self.horizon)
        return Outcome(
            arrivals=len(self.tracks.arrival),
            applied=len(self.applied),
            buffered=len(self.pending),
            versions=len(self.commits),
            span=span,
            nodes=tuple(n.busy / span for n in self.nodes),
            edges=tuple(e.busy / span for e in self.edges),
            root=self.root.busy / span,
            waits={
                "broker node": late_waits(self.nodes, warmup),
                "edge": late_waits(self.edges, warmup),
                "buffer (K ready)": Spread.of([self._buffered(u) for u, _, _ in applied]),
                "root": late_waits([self.root], warmup),
            },
            staleness=Spread.of([s for _, s, _ in applied]),
            sojourn=Spread.of([d for _, _, d in applied]),
        )

    def _buffered(self, uid: int) -> float:
        """From the update being ready at its edge to its step having K updates."""
        return self.tracks.formed[uid] - self.tracks.ready[uid]


def late_waits(servers: list[Server], warmup: float) -> Spread:
    return Spread.of([w for s in servers for t, w in s.waits if t >= warmup])


def simulate(
    fed: Federation, plat: Platform, *, horizon: float, seed: int = 0, warmup: float = 0.0
) -> Outcome:
    return CapacityRun(fed, plat, horizon=horizon, seed=seed).run().outcome(warmup)
