"""``fedmq demo --torch`` picks the PyTorch task and its defaults; flags still win."""

from __future__ import annotations

import argparse

import pytest

from fedmq.commands import demo
from runtime.cliargs import CliError


def parsed(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.setup(parser)
    return parser.parse_args(argv)


def test_torch_selects_the_mnist1d_task_its_rate_and_a_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEDMQ_LEARNING_RATE", raising=False)

    settings = demo._demo_settings(parsed(["--torch", "--workers", "8"]), "ns-t")

    assert settings.trainer == demo.TORCH_TRAINER
    assert settings.learning_rate == 0.2  # the rate at which the federated CNN meets its target
    assert settings.max_seconds == 120.0 and settings.max_versions is None


def test_flags_given_with_torch_are_kept() -> None:
    args = parsed(["--torch", "--learning-rate", "0.07", "--max-versions", "50"])

    settings = demo._demo_settings(args, "ns-t")

    assert settings.learning_rate == 0.07
    assert settings.max_versions == 50 and settings.max_seconds is None


def test_without_torch_the_builtin_task_is_unchanged() -> None:
    settings = demo._demo_settings(parsed([]), "ns-t")

    assert settings.trainer == "builtin" and settings.max_versions == 2000


def test_torch_with_the_mnist_dataset_selects_the_2d_cnn_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEDMQ_LEARNING_RATE", raising=False)

    settings = demo._demo_settings(parsed(["--torch", "--dataset", "mnist"]), "ns-t")

    assert settings.trainer == demo.MNIST_TRAINER and settings.dataset == "mnist"
    assert settings.learning_rate == 0.2 and settings.max_seconds == 120.0


def test_torch_refuses_a_dataset_it_has_no_task_for() -> None:
    with pytest.raises(CliError, match="synthetic"):
        demo._demo_settings(parsed(["--torch", "--dataset", "synthetic"]), "ns-t")
