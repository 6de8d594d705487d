"""The aggregator's status report and how ``fedmq status`` reads and shows it (no broker)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aggregator.core.progress import WorkerSeen
from aggregator.core.reports import PrivacyReport, Progress
from aggregator.core.status import RunIdentity, build_status
from broker.delivery import Delivery, Properties
from fedmq.status.peek import DeadLetters, count_reasons, newest_report
from fedmq.status.queues import QueueRow, QueueTable
from fedmq.status.render import render, staleness_lines
from fedmq.status.settings import StatusSettings
from fedmq.status.snapshot import Snapshot
from schemas.status import Scalar, StatusReport, decode_status, encode_status

PROGRESS = Progress(
    version=42,
    elapsed=12.5,
    updates_per_s=7.25,
    versions_per_s=7.0,
    staleness_mean=1.5,
    staleness_max=9,
    applied=40,
    rejected=2,
    duplicates=1,
    pending=0,
    workers=2,
    accuracy=0.91,
    loss=0.3,
)


def report(progress: Progress = PROGRESS, **extra: Scalar) -> StatusReport:
    workers = {
        "old": WorkerSeen(updates=4, staleness_sum=8, train_seconds_sum=2.0, last_seen=900.0),
        "new": WorkerSeen(updates=36, staleness_sum=52, train_seconds_sum=3.6, last_seen=1000.0),
    }
    return build_status(
        progress,
        RunIdentity("r1", "fedasync", 4, extra=extra),
        now=1000.5,
        rejected={"non-finite": 2, "framing": 0},
        staleness_histogram={0: 10, 1: 20, 9: 10},
        workers=workers,
        eval_version=40,
    )


def delivery(body: bytes, headers: dict[str, object] | None = None) -> Delivery:
    return Delivery(1, False, "", body, Properties(headers=headers or {}))


def snapshot(rep, dead: DeadLetters) -> Snapshot:  # type: ignore[no-untyped-def]
    table = QueueTable(
        "management",
        [
            QueueRow("ns.results", True, 3, 8, 1, 7.2, 7.1),
            QueueRow("ns.dead", True, 2, 0, 0, 0.0, 0.0),
            QueueRow("ns.status", False),
        ],
        worker_queues=2,
        claimed_partitions=[0, 2],
    )
    return Snapshot("ns", "amqp://u:***@h/v", 1001.0, table, rep, dead)


def test_a_report_lists_the_newest_workers_first_with_their_means() -> None:
    rep = report()

    assert [w.worker_id for w in rep.workers] == ["new", "old"]
    assert rep.workers[1].mean_staleness == 2.0 and rep.workers[1].mean_train_seconds == 0.5
    assert rep.rejected == {"non-finite": 2} and rep.workers_seen == 2


def test_a_report_survives_the_wire_and_keeps_unknown_progress_fields() -> None:
    privacy = PrivacyReport("central", 1.25, 1e-5, None, 1.0, 0.1, 3, 1, 2, "rdp", False)
    rep = report(replace(PROGRESS, privacy=privacy), clip_norm=0.1)

    back = decode_status(encode_status(rep))

    assert back == rep
    assert back.epsilon == 1.25
    assert back.extra == {"clip_norm": 0.1, "delta": 1e-5, "dp_clip": 0.1, "dp_mode": "central"}
    assert back.staleness_histogram == {0: 10, 1: 20, 9: 10}


def test_the_newest_decodable_report_wins_and_garbage_is_skipped() -> None:
    older, newer = report(), report().model_copy(update={"time": 2000.0, "version": 43})

    chosen = newest_report(
        [delivery(encode_status(newer)), delivery(b"{not json"), delivery(encode_status(older))]
    )

    assert chosen is not None and chosen.version == 43


def test_dead_letters_are_counted_by_fedmq_reason_then_broker_reason() -> None:
    letters = [
        delivery(b"", {"x-fedmq-reason": "non-finite"}),
        delivery(b"", {"x-fedmq-reason": b"non-finite"}),
        delivery(b"", {"x-death": [{"reason": b"delivery_limit", "queue": "ns.results"}]}),
        delivery(b"", {}),
    ]

    assert count_reasons(letters) == {"non-finite": 2, "broker:delivery_limit": 1, "unknown": 1}


def test_the_text_view_shows_queues_progress_workers_and_dead_letters() -> None:
    text = render(snapshot(report(), DeadLetters(total=2, inspected=2, reasons={"non-finite": 2})))

    assert "queues from management API" in text
    assert "ns.results" in text and "7.2" in text and "ns.status" in text and "missing" in text
    assert "partitions claimed: 2 [0, 2]" in text
    assert "version 42" in text and "7.2 updates/s" in text
    assert "test accuracy 0.9100" in text and "(version 40)" in text
    assert "rejected 2 (non-finite 2)" in text
    assert "dead letters: 2: non-finite 2" in text
    assert "workers: 2 seen, 1 in the last 30 s" in text
    assert "epsilon" not in text


def test_the_privacy_budget_appears_once_reported() -> None:
    privacy = PrivacyReport("central", 2.5, 1e-5, None, 1.0, 0.1, 3, 1, 2, "rdp", False)
    rep = report(replace(PROGRESS, privacy=privacy))
    text = render(snapshot(rep, DeadLetters(total=0, inspected=0)))

    assert "epsilon 2.500" in text and "dead letters: none" in text


def test_staleness_bars_group_the_tail_and_scale_to_the_peak() -> None:
    lines = staleness_lines({0: 10, 1: 20, 9: 10, 40: 5})

    by_label = {line.split()[1]: line for line in lines}
    assert "#" * 30 in by_label["1"]
    assert by_label["8-15"].rstrip().endswith("(22.2 %)") and "5 (11.1 %)" in by_label["16+"]


def test_without_a_report_the_view_says_so() -> None:
    text = render(snapshot(None, DeadLetters(total=None, inspected=0)))

    assert "no status report yet" in text and "dead letters: unknown" in text


@pytest.mark.parametrize(
    ("url", "management"),
    [
        ("amqp://u:p@broker:5672/fedmq", "http://broker:15672"),
        ("amqps://u:p@broker:5671/fedmq", "https://broker:15671"),
    ],
)
def test_auto_finds_the_management_api_over_tls_for_an_amqps_broker(
    url: str, management: str
) -> None:
    assert StatusSettings(amqp_url=url).management_base() == management
