"""How privacy is switched on: settings, the strategy factory, the worker's trainer and update,
progress fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from aggregator.core.identity import Roster
from aggregator.core.private import PrivateStrategy
from aggregator.factory import build_strategy, check_release_size, train_config
from aggregator.settings import AggregatorSettings
from aggregator.shell.service import AggregatorService
from privacy.accountant import epsilon
from privacy.spending import load_ledger
from schemas.messages import ClientPrivacy, TrainConfig
from tasks.builtin import make_trainer
from training.trainer import TrainerContext
from training.weights import l2_norm
from worker.settings import WorkerSettings
from worker.update import protect_update


def test_dp_settings_refuse_combinations_without_a_guarantee() -> None:
    with pytest.raises(ValidationError, match="target-epsilon needs"):
        AggregatorSettings(target_epsilon=1.0)
    with pytest.raises(ValidationError, match="unit weights"):
        AggregatorSettings(dp="central", sample_weighting=True)
    with pytest.raises(ValidationError, match="unclipped norms"):
        AggregatorSettings(dp="local", dp_adaptive_clip=True)
    with pytest.raises(ValidationError, match="count noise"):
        AggregatorSettings(
            dp="central",
            strategy="fedbuff",
            buffer_size=10,
            num_partitions=10,
            dp_adaptive_clip=True,
            dp_noise_multiplier=1.0,
        )


def test_dp_fedbuff_refuses_a_buffer_larger_than_the_expected_workers() -> None:
    # K = 10 with 4 workers used to stall: 192 of 200 updates dead-lettered, no release
    with pytest.raises(ValidationError, match="needs at least 10 workers"):
        AggregatorSettings(dp="central", strategy="fedbuff", buffer_size=10, num_partitions=4)
    AggregatorSettings(dp="central", strategy="fedbuff", buffer_size=4, num_partitions=4)


def test_dp_with_a_budget_refuses_to_run_without_checkpoints() -> None:
    with pytest.raises(ValidationError, match="needs checkpointing"):
        AggregatorSettings(dp="central", target_epsilon=1.0, checkpoint=False)
    AggregatorSettings(dp="central", checkpoint=False)  # no budget: nothing to forget


def test_dp_refuses_the_norm_bound() -> None:
    with pytest.raises(ValidationError, match="--norm-bound"):
        AggregatorSettings(dp="central", norm_bound=3.0)


def test_with_dp_fedasync_asks_for_deltas_and_fedbuff_drops_sample_weights() -> None:
    fedasync = build_strategy(AggregatorSettings(dp="central", strategy="fedasync"))
    fedbuff = build_strategy(AggregatorSettings(dp="central", strategy="fedbuff", buffer_size=4))

    assert isinstance(fedasync, PrivateStrategy) and fedasync.update_kind == "delta"
    assert isinstance(fedbuff, PrivateStrategy) and fedbuff.scale == pytest.approx(1.0 / 4)
    assert not isinstance(build_strategy(AggregatorSettings()), PrivateStrategy)


def test_workers_are_told_to_clip_only_when_configured() -> None:
    settings = AggregatorSettings(dp="central", dp_clip=0.3, dp_client_clip=True)
    local = AggregatorSettings(dp="local", dp_clip=0.3, dp_noise_multiplier=2.0)

    assert train_config(settings, build_strategy(settings)).privacy == ClientPrivacy(clip=0.3)
    assert train_config(local, build_strategy(local)).privacy == ClientPrivacy(
        clip=0.3, noise_multiplier=2.0
    )
    central = AggregatorSettings(dp="central")
    assert train_config(central, build_strategy(central)).privacy is None


def test_protect_update_clips_and_in_local_mode_noises() -> None:
    delta = {"w": np.full(100, 1.0, np.float32)}

    clipped = protect_update(delta, ClientPrivacy(clip=0.5), np.random.default_rng(0))
    noised = protect_update(
        delta, ClientPrivacy(clip=0.5, noise_multiplier=4.0), np.random.default_rng(0)
    )
    untouched = protect_update(delta, None, np.random.default_rng(0))

    assert l2_norm(clipped) <= 0.5
    assert np.std(noised["w"] - clipped["w"]) == pytest.approx(2.0, rel=0.25)
    assert untouched is delta


def dpsgd_trainer(ledger: Path) -> object:
    settings = WorkerSettings(
        dpsgd=True,
        dpsgd_noise_multiplier=1.5,
        dpsgd_ledger=str(ledger),
        dpsgd_seed=1,
        num_partitions=4,
    )
    return make_trainer(TrainerContext("worker", 0, 4, 0, settings.trainer_options()))


def test_the_dpsgd_worker_reports_its_epsilon_and_keeps_it_across_a_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    trainer = dpsgd_trainer(ledger)
    weights = trainer.initial_weights()  # type: ignore[attr-defined]
    config = TrainConfig(batch_size=32, learning_rate=0.5)

    first = trainer.fit(weights, config)  # type: ignore[attr-defined]
    second = dpsgd_trainer(ledger).fit(weights, config)  # type: ignore[attr-defined]

    assert "train_loss" not in first.metrics  # not private, so not reported
    assert 0 < first.metrics["dp_epsilon"] < second.metrics["dp_epsilon"]
    assert second.metrics["dp_steps_total"] == 2 * first.metrics["steps"]
    assert second.metrics["dp_epsilon"] == pytest.approx(epsilon(load_ledger(ledger), 1e-5))


def test_progress_fields_and_summary_show_the_spent_epsilon(tmp_path: Path) -> None:
    settings = AggregatorSettings(dp="central", run_dir=str(tmp_path), checkpoint=False)
    service = AggregatorService(
        settings, make_trainer(TrainerContext("aggregator", 0, 4, 0, settings.trainer_options()))
    )

    fields = service.progress().as_record()

    assert fields["epsilon"] == 0.0 and fields["delta"] == 1e-5 and fields["dp_clip"] == 1.0
    assert service.summary().privacy is not None


def test_dp_fedbuff_refuses_a_buffer_larger_than_the_roster() -> None:
    settings = AggregatorSettings(dp="central", strategy="fedbuff", buffer_size=4, num_partitions=4)

    with pytest.raises(ValueError, match="the roster lists 3"):
        check_release_size(settings, Roster(frozenset({"a", "b", "c"})))
    check_release_size(settings, Roster(frozenset({"a", "b", "c", "d"})))
    check_release_size(settings, None)  # no roster: the settings' own check applies
