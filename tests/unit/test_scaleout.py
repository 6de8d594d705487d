"""Scale-out FedBuff: edges' partial sums combined by a root equal one aggregator, bit for bit,
and every update is applied exactly once across edge and root crashes and duplicate routes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.core.fedbuff import FedBuff
from aggregator.core.partial import OutOfRange, Partial, fixed_terms, step_with
from aggregator.core.scaleout import Edge, Root, StepPlan
from aggregator.core.staleness import Polynomial
from aggregator.core.strategy import Contribution
from training.weights import Weights

K = 4


def model() -> Weights:
    return {
        "w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "b": np.zeros(3, np.float32),
    }


def arrivals(seed: int, count: int) -> list[Contribution]:
    rng = np.random.default_rng(seed)
    return [
        Contribution(
            update_id=f"u{i}",
            worker_id=f"w{rng.integers(0, 7)}",
            staleness=int(rng.integers(0, 6)),
            num_examples=int(rng.integers(20, 400)),
            arrays={
                "w": rng.normal(0, 0.1, (3, 4)).astype(np.float32),
                "b": rng.normal(0, 0.1, 3).astype(np.float32),
            },
        )
        for i in range(count)
    ]


def single_aggregator(updates: list[Contribution]) -> Weights:
    """One aggregator: steps of K updates in arrival order, with the exact buffer."""
    out, staleness = model(), Polynomial(0.5)
    for start in range(0, len(updates) - len(updates) % K, K):
        terms = [
            (
                c.update_id,
                fixed_terms(c.arrays, staleness(c.staleness) * c.num_examples),
                c.num_examples,
            )
            for c in updates[start : start + K]
        ]
        step_with(out, Partial.of(terms), 1.0)
    return out


def edge_of(contribution: Contribution, edges: int) -> str:
    """What the consistent-hash exchange does: the same worker always to the same edge."""
    return f"e{zlib.crc32(contribution.worker_id.encode()) % edges}"


def finish_step(root: Root, fleet: dict[str, Edge], out: Weights) -> StepPlan:
    plan = root.next_plan()
    assert plan is not None
    for name, _ in plan.assigned:
        root.answered(name, fleet[name].answer(plan))
    done = root.step(out)
    for edge in fleet.values():
        edge.committed(done)
    return done


def same_bits(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), edges=st.sampled_from([1, 2, 4]), shuffle=st.integers(0, 2**16))
def test_edges_equal_one_aggregator_bit_for_bit(seed: int, edges: int, shuffle: int) -> None:
    updates = arrivals(seed, 24)
    # The root plans in the order offers reach it: the single aggregator sees that order too.
    order = np.random.default_rng(shuffle)
    expected_order: list[Contribution] = []
    out, root = model(), Root(buffer_size=K)
    fleet = {f"e{i}": Edge(f"e{i}") for i in range(edges)}
    for c in updates:
        fleet[edge_of(c, edges)].receive(c)
    by_id = {c.update_id: c for c in updates}
    offers = {n: fleet[n].offer() for n in fleet}
    while any(offers.values()):
        name = list(fleet)[int(order.integers(0, edges))]
        if offers[name]:
            uid = offers[name].pop(0)
            expected_order.append(by_id[uid])
            root.offered(name, [uid])
        if root.next_plan() is not None:
            finish_step(root, fleet, out)

    assert root.version == len(updates) // K
    assert same_bits(out, single_aggregator(expected_order))


def test_the_exact_buffer_is_fedbuff_to_float32_precision() -> None:
    updates = arrivals(3, 16)
    reference, strategy = model(), FedBuff(buffer_size=K, server_lr=1.0, staleness=Polynomial(0.5))
    for c in updates:
        strategy.add(reference, c)

    exact = single_aggregator(updates)

    for name in reference:
        np.testing.assert_allclose(exact[name], reference[name], rtol=0, atol=2e-7)
    assert not same_bits(model(), exact)  # it did step


def test_a_crashed_edge_answers_the_same_plan_with_the_same_bits() -> None:
    updates = arrivals(5, K)
    edge, root = Edge("e0"), Root(buffer_size=K)
    for c in updates:
        edge.receive(c)
    root.offered("e0", edge.offer())
    plan = root.next_plan()
    assert plan is not None
    before = edge.answer(plan)

    reborn = Edge("e0")  # nothing was acked: the broker redelivers everything it held
    for c in reversed(updates):
        reborn.receive(c)
    after = reborn.answer(plan)

    assert after.update_ids == before.update_ids and after.mass == before.mass
    assert all(np.array_equal(after.sums[k], before.sums[k]) for k in before.sums)


def test_a_crashed_root_never_applies_an_update_twice_nor_loses_one() -> None:
    updates = arrivals(6, 3 * K)
    fleet = {"e0": Edge("e0"), "e1": Edge("e1")}
    for c in updates:
        fleet[edge_of(c, 2)].receive(c)
    out, root = model(), Root(buffer_size=K)
    for name, edge in fleet.items():
        root.offered(name, edge.offer())
    first = finish_step(root, fleet, out)
    checkpoint = (root.version, set(root.applied))
    root.next_plan()  # planned, then the root dies before the step

    revived = Root(version=checkpoint[0], buffer_size=K, applied=checkpoint[1])
    for name, edge in fleet.items():  # the edges offer what they still hold
        revived.offered(name, edge.offer())
    second = finish_step(revived, fleet, out)
    third = finish_step(revived, fleet, out)

    applied = [first.update_ids, second.update_ids, third.update_ids]
    assert sum(len(ids) for ids in applied) == len(updates)
    assert frozenset().union(*applied) == {c.update_id for c in updates}
    assert revived.version == 3 and all(not e.offer() for e in fleet.values())


def test_an_update_routed_to_two_edges_is_summed_once() -> None:
    updates = arrivals(7, K)
    a, b = Edge("ea"), Edge("eb")
    for c in updates:
        a.receive(c)
    b.receive(updates[0])  # redelivered to another edge after a rebalance
    root, out = Root(buffer_size=K), model()
    root.offered("eb", b.offer())
    root.offered("ea", a.offer())

    finish_step(root, {"ea": a, "eb": b}, out)

    assert same_bits(out, single_aggregator(updates))
    assert not a.offer() and not b.offer()


def test_an_edge_cannot_answer_for_updates_it_was_not_given() -> None:
    updates = arrivals(8, K)
    edge, root = Edge("e0"), Root(buffer_size=K)
    for c in updates:
        edge.receive(c)
    root.offered("e0", edge.offer())
    plan = root.next_plan()
    assert plan is not None

    with pytest.raises(ValueError, match="other updates"):
        root.answered("e0", Partial.of([]))
    with pytest.raises(LookupError):
        Edge("e0").answer(plan)


def test_a_redelivered_update_is_held_once_and_an_oversized_one_refused() -> None:
    edge, c = Edge("e0"), arrivals(9, 1)[0]

    assert edge.receive(c) and not edge.receive(c)
    with pytest.raises(OutOfRange):
        fixed_terms({"w": np.array([1e12])}, 1.0)


def test_fixed_point_terms_slice_by_slice_are_the_naive_rounding_bit_for_bit() -> None:
    delta = np.random.default_rng(10).normal(0, 0.05, (3, 100_001)).astype(np.float32)

    terms = fixed_terms({"w": delta}, 37.5)["w"]

    naive = np.rint(delta.astype(np.float64) * (37.5 * 2.0**32)).astype(np.int64)
    assert terms.dtype == np.int64 and terms.shape == delta.shape
    assert np.array_equal(terms, naive)
