"""The smallest platform that keeps every component under a utilisation target.

Edges first (their load depends on nothing else), then the buffer size the
root needs with that many edges (each step costs one partial per edge in
it), then the nodes for the bytes of updates, downloads, partials and
models; a node's link is its traffic over the target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simulator.capacity.load import Federation, Load, Platform, ceil_div, offered

#: The largest buffer the sizing tries before it reports the root as the limit.
MAX_BUFFER = 100_000


@dataclass(frozen=True)
class Sizing:
    """How many nodes and edges, which K, each node's link (Gbit/s), and the load they carry."""

    nodes: int
    edges: int
    buffer_size: int
    link_gbit_s: float
    load: Load


def total_node_mb_s(fed: Federation, plat: Platform) -> float:
    return offered(fed, plat).node_mb_s * plat.nodes


def smallest_buffer(fed: Federation, plat: Platform, target: float) -> int:
    """The smallest K at or above ``fed.buffer_size`` whose root stays under ``target`` (the
    root's load falls as K grows: its per-step cost is spread over more updates)."""

    def fits(k: int) -> bool:
        return offered(replace(fed, buffer_size=k), plat).root <= target

    if not fits(MAX_BUFFER):
        raise ValueError(f"the root stays above {target:.0%} even at K = {MAX_BUFFER}")
    low, high = fed.buffer_size, MAX_BUFFER
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    return low


def size(fed: Federation, plat: Platform, target: float = 0.7) -> Sizing:
    """The fewest edges and nodes (at least the replication factor) under ``target``."""
    if not 0 < target <= 1:
        raise ValueError("the utilisation target must be in (0, 1]")
    edges = ceil_div(fed.arrival_rate * fed.model_mb, target * plat.edge_mb_s)
    plat = replace(plat, edges=edges)
    fed = replace(fed, buffer_size=smallest_buffer(fed, plat, target))
    nodes = max(plat.replication, ceil_div(total_node_mb_s(fed, plat), target * plat.node_mb_s))
    plat = replace(plat, nodes=nodes)
    load = offered(fed, plat)
    return Sizing(nodes, edges, fed.buffer_size, load.link_gbit_s / target, load)
