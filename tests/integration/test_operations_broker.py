"""On the broker: partition claims are exclusive, and `fedmq status` reads without consuming."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aggregator.core.progress import WorkerSeen
from aggregator.core.reports import Progress
from aggregator.core.status import RunIdentity, build_status
from broker.connection import AmqpSession
from broker.names import Names
from broker.properties import dead_letter_properties, status_properties, update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_status_queue, declare_topology
from schemas.status import encode_status
from worker.claim import claim_partition

pytestmark = pytest.mark.broker


def test_each_session_gets_its_own_partition_until_none_is_left(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    sessions = [AmqpSession(broker_settings).__enter__() for _ in range(3)]
    try:
        got = [claim_partition(s, names, 2) for s in sessions]

        assert got == [0, 1, None]
        assert sessions[2].is_open  # a refused claim leaves the connection usable
    finally:
        for s in sessions:
            s.close()


def test_a_partition_is_free_again_when_its_holder_disconnects(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as first, AmqpSession(broker_settings) as second:
        assert claim_partition(first, names, 2, prefer=1) == 1
        assert claim_partition(second, names, 2, prefer=1) == 0
        first.close()

        with AmqpSession(broker_settings) as third:
            assert claim_partition(third, names, 2, prefer=1) == 1


def report(version: int) -> bytes:
    progress = Progress(
        version=version,
        elapsed=1.0,
        updates_per_s=2.0,
        versions_per_s=2.0,
        staleness_mean=0.5,
        staleness_max=1,
        applied=version,
        rejected=1,
        duplicates=0,
        pending=0,
        workers=1,
        accuracy=0.8,
        loss=0.5,
    )
    status = build_status(
        progress,
        RunIdentity("run1", "fedasync", 2),
        now=1e9 + version,
        rejected={"non-finite": 1},
        staleness_histogram={0: 1, 1: 1},
        workers={"w0": WorkerSeen(2, 1, 0.2, 1e9)},
        eval_version=version,
    )
    return encode_status(status)


def fedmq_status(settings: BrokerSettings, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fedmq",
            "status",
            "--amqp-url",
            settings.amqp_url,
            "--namespace",
            settings.namespace,
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_shows_the_latest_report_and_dead_letters_and_consumes_nothing(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        declare_status_queue(session, names)
        for version in (3, 4):
            session.publish(
                names.status_exchange, "", report(version), status_properties(), mandatory=True
            )
        for reason in ("non-finite", "non-finite", "future-version"):
            props = dead_letter_properties(
                update_properties("u-" + reason, "guest", 0), reason, "test"
            )
            session.publish(names.dead_exchange, "", b"x", props)

        result = fedmq_status(broker_settings, "--json", "--management-url", "off")

        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert (
            status["aggregator"]["version"] == 4
            and status["aggregator"]["workers"][0]["worker_id"] == "w0"
        )
        assert status["dead_letters"] == {
            "total": 3,
            "inspected": 3,
            "reasons": {"non-finite": 2, "future-version": 1},
        }
        assert status["queues"]["source"] == "amqp"
        assert session.queue_counts(names.status_queue) == (1, 0)  # the newest report stayed
        assert session.queue_counts(names.dead_queue) == (3, 0)  # and so did every dead letter


def test_max_age_fails_when_no_aggregator_has_reported(broker_settings: BrokerSettings) -> None:
    result = fedmq_status(broker_settings, "--max-age", "30", "--management-url", "off")

    assert result.returncode == 3 and "no status report yet" in result.stdout
