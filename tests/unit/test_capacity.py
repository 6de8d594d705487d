"""The capacity model: the offered load by hand, the simulated queues against queueing theory,
conservation of updates, staleness, and the sizing's minimality."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.capacity.__main__ import main
from simulator.capacity.load import Federation, Platform, offered, step_edges
from simulator.capacity.run import CapacityRun, simulate
from simulator.capacity.sizing import size

#: One update per second (3,600 clients, one an hour each), 10 MB models.
ONE_PER_SECOND = Federation(clients=3600, updates_per_hour=1, model_mb=10, buffer_size=10)
#: Servers fast enough to be no queue at all.
INSTANT = Platform(nodes=3, node_mb_s=1e9, edges=1, edge_mb_s=1e9, root_mb_s=1e9, step_seconds=0)


def test_the_offered_load_matches_the_hand_computed_one() -> None:
    plat = Platform(nodes=3, replication=3, node_mb_s=1000, edges=2, edge_mb_s=20, root_mb_s=100)
    plat = replace(plat, step_seconds=0.0)

    load = offered(ONE_PER_SECOND, plat)

    edges_in_step = 2 * (1 - 0.5**10)
    assert step_edges(ONE_PER_SECOND, plat) == pytest.approx(edges_in_step)
    assert load.edge == pytest.approx(10 / 40)  # λ·S / (E·μ)
    assert load.root == pytest.approx(0.1 * edges_in_step * 20 / 100)  # versions/s · partials
    per_version = 4 * 10 * edges_in_step + 5 * 10  # partials in + out, model into 3 replicas
    assert load.node_mb_s == pytest.approx((7 * 10 + 0.1 * per_version) / 3)  # (2R + 1)·S each
    assert load.node == pytest.approx(load.node_mb_s / 1000)


def test_one_edge_is_an_m_d_1_queue_utilisation_lambda_over_mu_and_its_mean_wait() -> None:
    plat = replace(INSTANT, edge_mb_s=20.0)  # 0.5 s per update at one per second: ρ = 0.5

    out = simulate(ONE_PER_SECOND, plat, horizon=20_000, seed=3, warmup=1_000)

    assert out.edges[0] == pytest.approx(0.5, abs=0.02)
    rho, mu = 0.5, 2.0
    assert out.waits["edge"].mean == pytest.approx(rho / (2 * mu * (1 - rho)), rel=0.1)


def test_an_overloaded_edge_is_busy_all_the_time_and_its_wait_grows() -> None:
    plat = replace(INSTANT, edge_mb_s=8.0)  # ρ = 1.25

    out = simulate(ONE_PER_SECOND, plat, horizon=2_000, seed=1, warmup=1_000)

    assert out.edges[0] == pytest.approx(1.0, abs=0.01)
    assert out.waits["edge"].mean > 100


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    nodes=st.integers(3, 6),
    edges=st.integers(1, 5),
    k=st.integers(1, 12),
    edge_mb_s=st.floats(5, 100),
)
def test_every_arrival_is_served_once_by_a_node_and_an_edge_and_applied_at_most_once(
    seed: int, nodes: int, edges: int, k: int, edge_mb_s: float
) -> None:
    fed = replace(ONE_PER_SECOND, buffer_size=k)
    plat = Platform(nodes=nodes, node_mb_s=400, edges=edges, edge_mb_s=edge_mb_s)

    run = CapacityRun(fed, plat, horizon=120, seed=seed).run()

    arrivals = len(run.tracks.arrival)
    applied = [uid for uid, _, _ in run.applied]
    assert len(applied) == len(set(applied))  # none twice
    assert len(applied) + len(run.pending) == arrivals and len(run.pending) < k  # none lost
    assert len(run.commits) * k == len(applied)
    assert sum(len(e.waits) for e in run.edges) == arrivals
    assert sum(len(n.waits) for n in run.nodes) == arrivals + len(run.commits)
    assert run.commits == sorted(run.commits)


def test_with_instant_service_staleness_counts_the_versions_during_training() -> None:
    fed = replace(ONE_PER_SECOND, buffer_size=1, train="constant:5")

    out = simulate(fed, INSTANT, horizon=5_000, seed=2)  # the first downloads predate the run

    assert out.staleness.mean == pytest.approx(5.0, rel=0.05)  # λ·T / K versions
    assert out.sojourn.p99 < 1e-6  # no queue anywhere


def test_an_update_trained_on_the_newest_model_and_applied_at_once_is_not_stale() -> None:
    fed = replace(ONE_PER_SECOND, buffer_size=1, train="constant:0")

    out = simulate(fed, INSTANT, horizon=500, seed=2)

    assert out.staleness.p99 == 0


@settings(max_examples=30, deadline=None)
@given(
    clients=st.integers(10_000, 3_000_000),
    model_mb=st.floats(0.1, 50),
    k=st.integers(10, 200),
)
def test_the_sizing_is_under_the_target_and_one_less_of_anything_is_not(
    clients: int, model_mb: float, k: int
) -> None:
    fed = Federation(clients=clients, model_mb=model_mb, buffer_size=k)
    plat = Platform()

    sized = size(fed, plat, 0.7)

    fed, plat = replace(fed, buffer_size=sized.buffer_size), replace(plat, nodes=sized.nodes)
    plat = replace(plat, edges=sized.edges)
    assert offered(fed, plat).worst <= 0.7 + 1e-9
    if sized.edges > 1:
        assert offered(fed, replace(plat, edges=sized.edges - 1)).edge > 0.7
    if sized.nodes > plat.replication:
        assert offered(fed, replace(plat, nodes=sized.nodes - 1)).node > 0.7
    if sized.buffer_size > k:
        assert offered(replace(fed, buffer_size=sized.buffer_size - 1), plat).root > 0.7


def test_a_platform_with_fewer_nodes_than_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="replicas"):
        Platform(nodes=2, replication=3)


def test_the_command_sizes_simulates_and_prints_the_tables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--clients", "36000", "--model-mb", "1", "--horizon", "60"])

    out = capsys.readouterr().out
    assert code == 0
    assert "| broker node (busiest) |" in out and "| root |" in out
    assert "applied + left in the buffer" in out and "| 500 MB/s |" in out


def test_a_client_that_downloaded_before_the_run_counts_the_versions_of_that_time() -> None:
    fed = replace(ONE_PER_SECOND, buffer_size=1, train="constant:5")  # one version a second

    run = CapacityRun(fed, INSTANT, horizon=50, seed=4).run()

    first = run.tracks.arrival[0]
    assert first < 5  # so it downloaded 5 - first seconds before the run began
    assert run.applied[0][:2] == (0, math.floor(5 - first))
