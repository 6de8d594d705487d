"""A provisioned worker is its AMQP user, and it takes models from the aggregator only."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.eventlog import EventLog
from schemas.codec import CONTENT_TYPE, Limits, encode
from schemas.messages import ModelVersion
from worker.inbox import ModelInbox
from worker.metrics import WorkerMetrics
from worker.settings import WorkerSettings

ALICE = "amqp://alice:pw@127.0.0.1:5672/fed"


def model(version: int, *, final: bool = False, run_id: str = "run-1") -> bytes:
    arrays = {"W": np.zeros((2, 2), np.float32)}
    message = ModelVersion(
        run_id=run_id, version=version, created_at=0.0, final=final, arrays=arrays
    )
    return encode(message)


def inbox(sender: str | None) -> ModelInbox:
    return ModelInbox(
        limits=Limits(), events=EventLog(None), metrics=WorkerMetrics(), sender=sender
    )


def test_a_forged_final_model_from_another_user_does_not_stop_the_worker() -> None:
    box = inbox("fed-aggregator")
    box.deliver(model(3), CONTENT_TYPE, "fed-aggregator")

    box.deliver(model(4, final=True), CONTENT_TYPE, "mallory")
    box.deliver(model(99, run_id="evil"), CONTENT_TYPE, None)

    assert not box.final
    assert box.latest is not None and (box.latest.version, box.latest.run_id) == (3, "run-1")
    assert box.refused == {"mallory": 1, "": 1}


def test_the_aggregators_own_final_model_is_taken() -> None:
    box = inbox("fed-aggregator")

    box.deliver(model(5, final=True), CONTENT_TYPE, "fed-aggregator")

    assert box.final and box.latest is not None and box.latest.version == 5


def test_a_provisioned_worker_is_its_user_and_trusts_the_federations_aggregator() -> None:
    settings = WorkerSettings(amqp_url=ALICE, namespace="fed")

    assert settings.worker_id == "alice"
    assert settings.model_sender() == "fed-aggregator"
    assert WorkerSettings(amqp_url=ALICE, aggregator_user="agg").model_sender() == "agg"


def test_a_provisioned_worker_cannot_take_another_id() -> None:
    with pytest.raises(ValidationError, match="must be the AMQP user 'alice'"):
        WorkerSettings(amqp_url=ALICE, worker_id="alice-2")


def test_as_guest_the_demo_keeps_ad_hoc_ids_and_checks_no_sender() -> None:
    settings = WorkerSettings(amqp_url="amqp://guest:guest@localhost:5672/%2F", worker_id="w3")

    assert settings.worker_id == "w3" and settings.model_sender() is None
    assert WorkerSettings(amqp_url="amqp://guest:guest@localhost/").worker_id != "guest"
