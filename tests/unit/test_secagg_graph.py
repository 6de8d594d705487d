"""The SecAgg+ neighbour graph and the choice of (k, t)."""

from __future__ import annotations

import math
from collections import Counter
from itertools import permutations

import pytest
from scipy.stats import chi2  # scipy comes with dp-accounting

from secagg.graph import graph_seed, neighbour_graph, shuffled
from secagg.params import check_parameters, choose_parameters

COHORT = tuple(f"w{i:02d}" for i in range(20))


def components(adjacency: tuple[tuple[int, ...], ...], removed: set[int]) -> int:
    seen: set[int] = set()
    count = 0
    for start in range(len(adjacency)):
        if start in removed or start in seen:
            continue
        count += 1
        stack = [start]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(v for v in adjacency[node] if v not in removed)
    return count


def test_the_graph_is_k_regular_symmetric_and_loop_free() -> None:
    graph = neighbour_graph("b1", COHORT, 6)

    for i, neighbours in enumerate(graph.adjacency):
        assert len(neighbours) == 6
        assert i not in neighbours
        assert all(i in graph.neighbours(j) for j in neighbours)


def test_neighbours_are_the_nearest_k_over_2_on_each_side_of_the_shuffled_ring() -> None:
    graph = neighbour_graph("b1", COHORT, 4)
    ring = shuffled(len(COHORT), graph_seed("b1", COHORT))
    p = ring.index(0)

    expected = {ring[(p + d) % len(COHORT)] for d in (-2, -1, 1, 2)}

    assert set(graph.neighbours(0)) == expected


def test_the_graph_is_the_same_for_everyone_and_differs_between_buffers() -> None:
    assert neighbour_graph("b1", COHORT, 4) == neighbour_graph("b1", COHORT, 4)
    assert neighbour_graph("b1", COHORT, 4) != neighbour_graph("b2", COHORT, 4)


def test_degree_n_minus_1_is_the_complete_graph() -> None:
    graph = neighbour_graph("b1", COHORT[:5], 4)

    assert all(set(graph.neighbours(i)) == set(range(5)) - {i} for i in range(5))


@pytest.mark.parametrize("degree", [0, 3, 20])
def test_impossible_degrees_are_refused(degree: int) -> None:
    with pytest.raises(ValueError):
        neighbour_graph("b1", COHORT, degree)


def test_one_run_of_k_over_2_removed_ring_positions_leaves_it_connected_two_runs_cut_it() -> None:
    graph = neighbour_graph("b1", COHORT, 4)
    ring = shuffled(len(COHORT), graph_seed("b1", COHORT))

    assert components(graph.adjacency, {ring[3], ring[4]}) == 1
    assert components(graph.adjacency, {ring[3], ring[4], ring[12], ring[13]}) == 2


def test_the_shuffle_is_uniform_over_permutations() -> None:
    trials = 4800
    counts = Counter(
        tuple(shuffled(4, bytes([s % 256, s // 256]) + bytes(30))) for s in range(trials)
    )
    expected = trials / 24

    statistic = sum((counts[p] - expected) ** 2 / expected for p in permutations(range(4)))

    assert len(counts) == 24
    assert chi2.sf(statistic, df=23) > 1e-6


def test_thresholds_must_exceed_half_the_holders() -> None:
    check_parameters(10, 4, 3)  # 5 holders, t = 3
    for degree, threshold in ((4, 2), (4, 6), (3, 3)):
        with pytest.raises(ValueError):
            check_parameters(10, degree, threshold)


def test_a_small_cohort_gets_the_complete_graph_with_the_worst_case_threshold() -> None:
    chosen = choose_parameters(10, dropout_rate=0.3)

    assert (chosen.degree, chosen.threshold) == (9, 6)  # t = 10 // 2 + 1; 10 - 3 dropouts = 7 >= 6


def test_too_many_dropouts_for_any_safe_threshold_are_refused() -> None:
    with pytest.raises(ValueError, match="no safe threshold"):
        choose_parameters(10, dropout_rate=0.5)


def test_a_large_cohort_gets_a_sparse_graph_that_meets_the_stated_bounds() -> None:
    chosen = choose_parameters(1000, dropout_rate=0.1, corrupt_rate=0.05)

    assert chosen.degree < 200
    assert chosen.correctness_log2 <= -20
    assert chosen.privacy_log2 <= -40
    check_parameters(1000, chosen.degree, chosen.threshold)


def test_the_degree_grows_like_log_n() -> None:
    small = choose_parameters(200, dropout_rate=0.1).degree
    large = choose_parameters(20000, dropout_rate=0.1).degree

    # 100 times the workers: a linear rule would give ~100x; log growth adds a few neighbours.
    assert small < large < small * (1 + math.log(100))
