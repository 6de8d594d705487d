"""The Flower comparison's arithmetic (time to a target, accuracy at a time, the speed-up) and the
settings both runtimes are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.flower.curves import accuracy_at, best, speedup, time_to
from bench.flower.peer import FlowerDeployment, run_config
from bench.flower.report import accuracy_table, time_table
from bench.flower.task import LEARNING_RATE, config

CURVE = [(0.0, 0.1), (10.0, 0.5), (20.0, 0.9), (30.0, 0.85), (40.0, 0.95)]


def test_time_to_is_the_first_evaluation_at_or_above_the_target() -> None:
    assert time_to(CURVE, 0.9) == 20.0
    assert time_to(CURVE, 0.5) == 10.0
    assert time_to(CURVE, 0.96) is None
    assert time_to([], 0.1) is None
    assert best(CURVE) == 0.95 and best([]) == 0.0


def test_accuracy_at_is_the_latest_evaluation_made_by_then() -> None:
    assert accuracy_at(CURVE, 35.0) == 0.85  # a dip counts: it is what the server held
    assert accuracy_at(CURVE, 20.0) == 0.9
    assert accuracy_at([(5.0, 0.3)], 4.9) is None


def test_speedup_is_exact_or_a_lower_bound_when_the_peer_never_got_there() -> None:
    assert speedup(10.0, 150.0, 900.0) == (15.0, True)
    assert speedup(10.0, None, 900.0) == (90.0, False)
    with pytest.raises(ValueError):
        speedup(None, 150.0, 900.0)


def test_tables_judge_the_floor_only_on_what_was_seen() -> None:
    curves = {"fedbuff": [(5.0, 0.9)], "fedavg": [(60.0, 0.9)], "flower": [(300.0, 0.9)]}
    ran = {"fedbuff": 100.0, "fedavg": 100.0, "flower": 400.0}
    table = time_table(curves, ran, 0.878, 10.0).splitlines()
    assert "| fedmq fedbuff | 5 s | 60.0x | met |" in table
    assert "| fedmq fedavg | 60 s | 5.0x | not met |" in table
    unreached = {**curves, "flower": [(300.0, 0.5)]}
    bound = time_table(unreached, ran, 0.878, 10.0).splitlines()
    assert "| fedmq fedbuff | 5 s | >= 80.0x (lower bound) | met |" in bound
    assert "| fedmq fedavg | 60 s | >= 6.7x (lower bound) | undecided |" in bound
    matched = time_table(curves, ran, 0.9, None).splitlines()
    assert matched[0] == "| runtime | time to 0.9000 | Flower's time / this |"
    assert "| fedmq fedbuff | 5 s | 60.0x |" in matched
    never = {**curves, "fedbuff": [(5.0, 0.5)]}
    assert (
        "| fedmq fedbuff | not reached in 100 s | - | not met |"
        in time_table(never, ran, 0.878, 10.0).splitlines()
    )
    acc = accuracy_table(curves, [10.0, 300.0]).splitlines()
    assert "| fedmq fedbuff | 0.900 | 0.900 (1.00x) |" in acc
    assert "| Flower 1.42 FedAvg | - | 0.900 |" in acc


def test_both_runtimes_train_at_the_learning_rate_they_are_given() -> None:
    overrides = run_config(Path("/tmp/c.jsonl"), 7, 0.2).split()
    assert overrides == ["curve-path='/tmp/c.jsonl'", "num-server-rounds=7", "learning-rate=0.2"]
    assert config(0.2).learning_rate == 0.2
    assert config().learning_rate == LEARNING_RATE == 0.2


def test_flower_finds_its_home_whatever_directory_the_bench_was_started_from() -> None:
    flower = FlowerDeployment(Path(".venv-flower"), Path("runs/flower"))
    assert flower.home.is_absolute()
    assert flower.env["FLWR_HOME"] == str(flower.home)
