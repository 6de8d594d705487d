"""The SecAgg+ neighbour graph: a Harary graph H(k, n) over a pseudorandom ring order of the cohort.

Worker i sits at ring position ``pos[i]`` and is adjacent to the workers
within k/2 positions on either side, so every worker has exactly k
neighbours (k even); k = n - 1 is the complete graph of plain SecAgg. The
ring order is a Fisher-Yates shuffle driven by a ChaCha20 stream keyed with
a hash of the buffer id and the cohort: public, so every party computes the
same graph, and fixed before anyone has advertised a key. Removing a set of
workers disconnects such a graph only if it contains two disjoint runs of
k/2 consecutive ring positions (see ``secagg.params``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from secagg.keys import context
from secagg.prg import keystream_words


@dataclass(frozen=True)
class NeighbourGraph:
    """Adjacency by cohort index; symmetric, without self-loops."""

    size: int
    degree: int
    adjacency: tuple[tuple[int, ...], ...]

    def neighbours(self, index: int) -> tuple[int, ...]:
        return self.adjacency[index]


def check_degree(size: int, degree: int) -> None:
    """ValueError unless H(degree, size) is defined: 1 <= k <= n - 1, k even unless complete."""
    if size < 2:
        raise ValueError(f"a cohort needs at least 2 workers, got {size}")
    if not 1 <= degree <= size - 1:
        raise ValueError(f"degree {degree} outside [1, {size - 1}]")
    if degree != size - 1 and degree % 2:
        raise ValueError(f"a sparse degree must be even, got {degree}")


def graph_seed(buffer_id: str, cohort: Sequence[str]) -> bytes:
    """The public randomness of a buffer's graph."""
    return hashlib.sha256(context("graph", buffer_id, *cohort)).digest()


def neighbour_graph(buffer_id: str, cohort: Sequence[str], degree: int) -> NeighbourGraph:
    """The graph of ``cohort`` (indices as in the sequence) for ``buffer_id``."""
    size = len(cohort)
    check_degree(size, degree)
    if degree == size - 1:
        adjacency = tuple(tuple(j for j in range(size) if j != i) for i in range(size))
        return NeighbourGraph(size, degree, adjacency)
    ring = shuffled(size, graph_seed(buffer_id, cohort))
    position = {node: p for p, node in enumerate(ring)}
    half = degree // 2
    adjacency = tuple(
        tuple(sorted(ring[(position[i] + d) % size] for d in range(-half, half + 1) if d))
        for i in range(size)
    )
    return NeighbourGraph(size, degree, adjacency)


def shuffled(size: int, seed: bytes) -> list[int]:
    """A uniformly random permutation of range(size) (Fisher-Yates, rejection sampling)."""
    words = _word_stream(seed, size)
    order = list(range(size))
    for i in range(size - 1, 0, -1):
        span = i + 1
        limit = (1 << 32) - (1 << 32) % span  # the largest multiple of span that fits in 32 bits
        word = next(words)
        while word >= limit:
            word = next(words)
        j = word % span
        order[i], order[j] = order[j], order[i]
    return order


def _word_stream(seed: bytes, chunk: int) -> Iterator[int]:
    """An endless stream of uniform 32-bit words from ``seed`` (chunks with distinct contexts)."""
    block = 0
    while True:
        yield from keystream_words(
            seed, chunk + 16, context=context("graph-words", str(block))
        ).tolist()
        block += 1
