"""Backpressure cannot silently turn a confirmed update into a drop: a worker stops retrying a
refused update once the aggregator would refuse it as too stale, and says so (event, metric).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from broker.errors import ConnectionLost, PublishFailed
from broker.names import Names
from broker.settings import BrokerSettings
from runtime.eventlog import EventLog, read_events
from schemas.messages import ClientUpdate, ModelVersion, TrainConfig
from worker.metrics import WorkerMetrics
from worker.outbox import Outbox

ARRAYS = {"w": np.zeros(2, np.float32)}


class RefusingSession:
    """A broker whose results queue is full: every publish is nacked."""

    settings = BrokerSettings()
    username = "guest"

    def publish(self, *args: Any, **kwargs: Any) -> None:
        raise PublishFailed("broker refused the message (nack; is the queue full?)")


@dataclass
class Newest:
    latest: ModelVersion | None


def model(version: int, max_staleness: int | None) -> ModelVersion:
    config = TrainConfig(max_staleness=max_staleness)
    return ModelVersion(run_id="r", version=version, created_at=0.0, config=config, arrays=ARRAYS)


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "w.jsonl")
    yield log
    log.close()


def outbox_with(events: EventLog, newest: Newest) -> tuple[Outbox, WorkerMetrics]:
    metrics = WorkerMetrics()
    box = Outbox(Names("ns"), newest, events=events, metrics=metrics)
    update = ClientUpdate(
        update_id="refused-update",
        worker_id="w0",
        base_version=10,
        num_examples=1,
        update_kind="weights",
        train_seconds=0.0,
        arrays=ARRAYS,
    )
    box.put(update, b"body")
    return box, metrics


def test_a_refused_update_within_the_staleness_bound_is_kept_for_a_retry(
    events: EventLog,
) -> None:
    box, _ = outbox_with(events, Newest(model(110, max_staleness=100)))

    # Kept, and the retry asks for a new connection (a 3.10 channel can stay stuck after a nack).
    with pytest.raises(ConnectionLost, match="nacked"):
        box.send(RefusingSession(), final=False, partition=0)  # type: ignore[arg-type]

    assert box.pending is not None and box.retries == 1


def test_a_refused_update_past_the_staleness_bound_is_given_up_and_counted(
    events: EventLog, tmp_path: Path
) -> None:
    newest = Newest(model(110, max_staleness=100))
    box, metrics = outbox_with(events, newest)
    with pytest.raises(ConnectionLost):
        box.send(RefusingSession(), final=False, partition=0)  # type: ignore[arg-type]
    newest.latest = model(111, max_staleness=100)  # the model moved on while the queue was full

    settled = box.send(RefusingSession(), final=False, partition=0)  # type: ignore[arg-type]

    assert settled is not None and settled.update_id == "refused-update" and box.pending is None
    events.close()
    abandoned = [e for e in read_events(tmp_path / "w.jsonl") if e["event"] == "abandoned"]
    assert [(e["update_id"], e["reason"]) for e in abandoned] == [("refused-update", "too-stale")]
    assert (
        metrics.registry.get_sample_value(
            "fedmq_worker_updates_abandoned_total", {"reason": "too-stale"}
        )
        == 1
    )


class QuickRefusingSession(RefusingSession):
    """The same full queue, with an operator who bounds every backoff at 1 s."""

    settings = BrokerSettings(connect_backoff_max=1.0)


def test_a_refused_updates_retry_waits_no_longer_than_the_configured_backoff(
    events: EventLog,
) -> None:
    # A cluster that lost its majority nacks every publish for as long as it lasts: once it is
    # back, a worker must not sit out a backoff longer than its operator allowed.
    box, _ = outbox_with(events, Newest(model(11, max_staleness=None)))
    for _ in range(8):
        with pytest.raises(ConnectionLost):
            box.send(QuickRefusingSession(), final=False, partition=0)  # type: ignore[arg-type]
        assert box.pending is not None
        box.pending.not_before = 0.0  # retry at once: the next refusal doubles the backoff

    with pytest.raises(ConnectionLost):
        box.send(QuickRefusingSession(), final=False, partition=0)  # type: ignore[arg-type]

    assert box.pending is not None
    assert box.pending.not_before - time.monotonic() <= 1.0
