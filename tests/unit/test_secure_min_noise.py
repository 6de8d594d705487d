"""A worker's own floor on distributed DP noise: a secure round asking for less is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.eventlog import EventLog
from schemas.secure import SecureRound
from secagg.wire import round_message
from tests.unit.test_distributed_dp import private
from tests.unit.test_secure_fedbuff import WORKERS, model
from worker.secure import SecureParticipant


def keys_round(z: float | None) -> SecureRound:
    strategy = private(z=z or 1.0)
    if z is None:
        strategy.privacy = None  # a round without noise
    setup = strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model())
    assert setup is not None
    return round_message(setup, run_id="r", version=0, stage="keys", messages=())


@pytest.mark.parametrize(("z", "joins"), [(None, False), (0.5, False), (1.0, True), (2.0, True)])
def test_a_round_below_the_workers_minimum_noise_is_refused(
    tmp_path: Path, z: float | None, joins: bool
) -> None:
    events = tmp_path / "events.jsonl"
    log = EventLog(events)
    worker = SecureParticipant("w0", log, min_noise=1.0)
    worker.offer(keys_round(z))
    log.close()
    assert (worker.client is not None) is joins
    written = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert ("secure-refused" in written) is not joins


def test_without_a_minimum_a_round_without_noise_is_joined(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    worker = SecureParticipant("w0", log)
    worker.offer(keys_round(None))
    log.close()
    assert worker.client is not None
