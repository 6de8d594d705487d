"""The discrete-event simulator: determinism, workloads, the real strategies on a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedmq.cli import main
from simulator.distributions import parse_distribution
from simulator.engine import simulate
from simulator.events import EventQueue
from simulator.settings import SimulationSettings


def sim_settings(**over: object) -> SimulationSettings:
    base: dict[str, object] = {
        "num_partitions": 4,
        "max_versions": 40,
        "duration": "lognormal:0,0.3",
    }
    base.update(over)
    return SimulationSettings(**base)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    first = simulate(sim_settings(sim_seed=3))
    again = simulate(sim_settings(sim_seed=3))
    other = simulate(sim_settings(sim_seed=4))

    assert first.curve == again.curve and first.staleness_histogram == again.staleness_histogram
    assert first.virtual_seconds != other.virtual_seconds


def test_fedasync_on_digits_learns_and_sees_staleness() -> None:
    result = simulate(sim_settings(max_versions=200, speeds="1,1,2,4"))

    assert result.accuracy is not None and result.accuracy > 0.85
    assert result.staleness_max > 0 and result.version == 200


def test_synchronous_fedavg_runs_rounds_of_every_client_at_zero_staleness() -> None:
    result = simulate(
        sim_settings(strategy="fedavg", max_versions=10, speeds="1,1,5,10", duration="constant:1")
    )

    assert result.version == 10 and result.handled == 40
    assert result.staleness_max == 0
    # each round lasts as long as the slowest client: 10 virtual seconds
    assert result.virtual_seconds == pytest.approx(100.0)


def test_a_thousand_clients_on_poisson_arrivals() -> None:
    settings = sim_settings(
        dataset="synthetic",
        num_partitions=1000,
        workload="poisson",
        arrival_rate=200.0,
        strategy="fedbuff",
        max_versions=None,
        max_updates=2000,
        learning_rate=0.05,
    )

    result = simulate(settings)

    assert result.clients == 1000 and result.handled == 2000
    assert result.updates_per_virtual_second == pytest.approx(200.0, rel=0.15)


def test_a_trace_decides_who_trains_when_and_for_how_long(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,client,duration\n0,0,5\n1,1,1\n2.5,1,1\n3.2,2,\n")

    result = simulate(
        sim_settings(
            workload="trace",
            trace_file=str(trace),
            strategy="fedasync",
            max_versions=None,
            max_updates=10,
            duration="constant:0.5",
        )
    )

    assert (
        result.handled == 4
        and result.stopped_because == "no more clients"
        and result.virtual_seconds == 5.0
    )
    # lands: client 1 at 2 (v0), client 1 at 3.5 (v1), client 2 at 3.7 (v1, now v2), client 0 at 5
    # (v0, now v3)
    assert result.staleness_histogram == {0: 2, 1: 1, 3: 1}


def test_an_event_queue_pops_by_time_then_in_push_order() -> None:
    queue: EventQueue[str] = EventQueue()
    for at, name in [(2.0, "c"), (1.0, "a"), (1.0, "b")]:
        queue.push(at, name)

    assert [queue.pop()[1] for _ in range(3)] == ["a", "b", "c"]


@pytest.mark.parametrize("spec", ["normal:1,2", "lognormal:1", "uniform:a,b", "exponential:-1"])
def test_bad_distribution_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_distribution(spec)


def test_distributions_sample_what_they_say() -> None:
    rng = np.random.default_rng(0)
    samples = [parse_distribution("exponential:2").sample(rng) for _ in range(4000)]

    assert np.mean(samples) == pytest.approx(2.0, rel=0.1)


def test_the_cli_prints_a_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--num-partitions", "3", "--max-versions", "5", "--json"])

    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["version"] == 5 and out["clients"] == 3


def test_the_cli_refuses_a_bad_duration_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--duration", "sometimes"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--duration" in err
