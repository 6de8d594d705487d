"""The federation and the platform it runs on, and the work each component is offered.

Bytes are counted where they cross a broker node's network interface, in or
out. Per update of S MB: the client's publish into the leader (S), the
leader's copies to the other R − 1 replicas (out and in: 2(R − 1)·S), the
delivery to its edge (S) and the client's model download (S): (2R + 1)·S.
Per version: each edge in the step sends its partial (int64, twice a float32
model) to the root through the broker (in and out: 4S per edge) and the root
publishes the new model into a replicated queue ((2R − 1)·S). Nodes share the
load evenly (edge queues and their leaders are spread over them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0
#: A partial is the exact buffer's int64 sum: twice the bytes of a float32 model.
PARTIAL_FACTOR = 2.0


@dataclass(frozen=True, kw_only=True)
class Federation:
    """Who sends what: ``clients`` each sending ``updates_per_hour``, a model of ``model_mb``, a
    step every ``buffer_size`` updates (K); ``train``: seconds from a client's download to its
    upload (a ``simulator.distributions`` spec)."""

    clients: int = 1_000_000
    updates_per_hour: float = 1.0
    model_mb: float = 10.0
    buffer_size: int = 100
    train: str = "exponential:300"

    @property
    def arrival_rate(self) -> float:
        """Updates per second offered to the federation (λ)."""
        return self.clients * self.updates_per_hour / SECONDS_PER_HOUR

    @property
    def version_rate(self) -> float:
        return self.arrival_rate / self.buffer_size


@dataclass(frozen=True, kw_only=True)
class Platform:
    """What serves it: ``nodes`` broker nodes of ``node_mb_s`` each (bytes in plus out), quorum
    queues of ``replication`` members, ``edges`` edges of ``edge_mb_s`` of updates each, a root
    that takes in ``root_mb_s`` of partials and spends ``step_seconds`` on each step besides
    (planning, checkpoint, announcing)."""

    nodes: int = 3
    replication: int = 3
    node_mb_s: float = 500.0
    edges: int = 8
    edge_mb_s: float = 300.0
    root_mb_s: float = 300.0
    step_seconds: float = 0.3

    def __post_init__(self) -> None:
        if min(self.nodes, self.edges, self.replication) < 1:
            raise ValueError("nodes, edges and replication must be at least 1")
        if self.replication > self.nodes:
            raise ValueError(f"{self.replication} replicas need at least as many nodes")
        if min(self.node_mb_s, self.edge_mb_s, self.root_mb_s) <= 0 or self.step_seconds < 0:
            raise ValueError("service rates must be positive, the step's cost not negative")


def update_node_mb(fed: Federation, plat: Platform) -> float:
    """Node MB one update costs the broker: publish, replication, delivery, model download."""
    return (2 * plat.replication + 1) * fed.model_mb


def step_edges(fed: Federation, plat: Platform) -> float:
    """Edges expected in a step of K updates spread uniformly over E edges: E·(1 − (1 − 1/E)^K)."""
    e = plat.edges
    return e * (1 - (1 - 1 / e) ** fed.buffer_size)


def version_node_mb(fed: Federation, plat: Platform, edges_in_step: float) -> float:
    """Node MB one version costs: the partials in and out, the new model into its replicas."""
    partials = 2 * PARTIAL_FACTOR * fed.model_mb * edges_in_step
    return partials + (2 * plat.replication - 1) * fed.model_mb


def root_seconds(fed: Federation, plat: Platform, edges_in_step: float) -> float:
    """The root's work for one step: its fixed cost, and taking in and adding each edge's
    partial."""
    return plat.step_seconds + edges_in_step * PARTIAL_FACTOR * fed.model_mb / plat.root_mb_s


@dataclass(frozen=True)
class Load:
    """The analytic picture: utilisation (offered work / capacity) of each component and the
    bytes per second through each broker node."""

    node: float
    edge: float
    root: float
    node_mb_s: float

    @property
    def worst(self) -> float:
        return max(self.node, self.edge, self.root)

    @property
    def link_gbit_s(self) -> float:
        """A node's traffic (in plus out) in Gbit/s."""
        return self.node_mb_s * 8 / 1000


def offered(fed: Federation, plat: Platform) -> Load:
    lam, per_step = fed.arrival_rate, step_edges(fed, plat)
    node_mb_s = (
        lam * update_node_mb(fed, plat) + fed.version_rate * version_node_mb(fed, plat, per_step)
    ) / plat.nodes
    return Load(
        node=node_mb_s / plat.node_mb_s,
        edge=lam * fed.model_mb / (plat.edges * plat.edge_mb_s),
        root=fed.version_rate * root_seconds(fed, plat, per_step),
        node_mb_s=node_mb_s,
    )


def ceil_div(a: float, b: float) -> int:
    return max(1, math.ceil(a / b - 1e-9))
