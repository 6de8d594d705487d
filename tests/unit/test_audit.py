"""The run audit: crashed commits are void, everything confirmed is accounted for once, versions
have one digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedmq.audit import RunEvidence, check_run, confirmed_ids, split_lives
from fedmq.cli import main


def start(commit: int, version: int = 0) -> dict[str, Any]:
    return {"event": "start", "commit": commit, "version": version}


def applied(update_id: str, commit: int) -> dict[str, Any]:
    return {"event": "applied", "update_id": update_id, "commit": commit}


def published(version: int, digest: str) -> dict[str, Any]:
    return {"event": "published", "version": version, "digest": digest}


def rejected(update_id: str, reason: str) -> dict[str, Any]:
    return {"event": "rejected", "message_id": update_id, "reason": reason}


def test_a_clean_run_accounts_for_every_confirmed_update() -> None:
    audit = [start(0), applied("a", 1), published(1, "d1"), applied("b", 2), published(2, "d2")]

    report = check_run(RunEvidence(audit, confirmed=["a", "b"], final_commit=2))

    assert report.ok, report.problems
    assert report.fates == {"applied": 2} and report.applied == 2 and report.versions == 2


def test_a_commit_lost_in_a_crash_is_void_and_its_reapplication_counts_once() -> None:
    audit = [
        start(0),
        applied("a", 1),
        published(1, "d1"),
        applied("b", 2),  # crash before checkpoint 2
        start(1, version=1),
        published(1, "d1"),
        applied("b", 2),
        published(2, "d2"),
    ]

    report = check_run(RunEvidence(audit, confirmed=["a", "b"], final_commit=2))

    assert report.ok, report.problems
    assert (report.applied, report.void) == (2, 1)
    assert [life.void for life in report.lives] == [1, 0]


def test_an_update_applied_in_two_durable_commits_is_reported() -> None:
    audit = [start(0), applied("a", 1), start(1), applied("a", 2)]

    report = check_run(RunEvidence(audit, confirmed=["a"], final_commit=2))

    assert report.problems == ["update a was applied 2 times"]


def test_the_final_checkpoint_voids_the_tail_of_the_last_life() -> None:
    audit = [start(0), applied("a", 1), applied("b", 2)]

    report = check_run(RunEvidence(audit, confirmed=["a"], final_commit=1))

    assert report.ok and (report.applied, report.void) == (1, 1)


def test_a_confirmed_update_found_nowhere_is_lost() -> None:
    report = check_run(RunEvidence([start(0)], confirmed=["gone"], final_commit=0))

    assert report.problems == [
        "update gone was confirmed to its worker but never applied, rejected or queued"
    ]
    assert report.fates == {"lost": 1}


def test_rejected_dead_lettered_and_still_queued_updates_are_accounted_for() -> None:
    audit = [start(0), rejected("old", "too-stale")]

    report = check_run(
        RunEvidence(
            audit,
            confirmed=["old", "poison", "waiting"],
            queued=["waiting"],
            dead={"poison": "delivery_limit"},
        )
    )

    assert report.ok, report.problems
    assert report.fates == {"rejected": 1, "dead-lettered": 1, "queued": 1}
    assert report.rejections == {"too-stale": 1, "delivery_limit": 1}


def test_an_update_both_applied_and_rejected_is_reported() -> None:
    audit = [start(0), applied("a", 1), rejected("a", "non-finite")]

    report = check_run(RunEvidence(audit, confirmed=["a"], final_commit=1))

    assert report.problems == ["update a was applied and also rejected (non-finite)"]


def test_republishing_a_version_with_the_same_weights_is_fine_with_others_it_is_not() -> None:
    same = [start(0), published(3, "x"), start(0), published(3, "x")]
    different = [start(0), published(3, "x"), start(0), published(3, "y")]

    assert check_run(RunEvidence(same, confirmed=[])).ok
    assert check_run(RunEvidence(different, confirmed=[])).problems == [
        "version 3 was published with 2 different digests: ['x', 'y']"
    ]


def test_a_checkpoint_that_goes_back_is_reported() -> None:
    audit = [start(5), applied("a", 6), start(2)]

    report = check_run(RunEvidence(audit, confirmed=[], final_commit=2))

    assert report.problems[0] == "life 0 ran commits 5..6 but the next durable commit is 2"


def test_the_checkpoint_counter_must_match_the_audit_log() -> None:
    audit = [start(0), applied("a", 1)]

    report = check_run(RunEvidence(audit, confirmed=["a"], final_commit=1, final_applied=2))

    assert report.problems == ["the checkpoint counts 2 applied updates, the audit log 1"]


def test_lives_are_cut_at_start_lines_and_the_report_says_ok() -> None:
    audit = [start(0), applied("a", 1), start(1), start(1)]

    lives = split_lives(audit)
    report = check_run(
        RunEvidence(audit, confirmed=confirmed_ids([{"event": "confirmed", "update_id": "a"}]))
    )

    assert [len(life) for life in lives] == [2, 1, 1]
    assert report.lines()[0] == "aggregator lives: 3 (2 restarts)"
    assert report.lines()[-1] == "OK: nothing lost, nothing applied twice"


def write_run(run_dir: Path, audit: list[dict[str, Any]], confirmed: list[str]) -> None:
    (run_dir / "audit.jsonl").write_text("".join(json.dumps(e) + "\n" for e in audit))
    events = [{"event": "confirmed", "update_id": u} for u in confirmed]
    (run_dir / "w0.events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_fedmq_audit_reads_a_run_directory_and_exits_1_on_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path, [start(0), applied("a", 1), published(1, "d1")], confirmed=["a", "gone"])

    code = main(["audit", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 1
    assert (
        "confirmed by workers: 2 -> applied 1, lost 1" in out and "update gone was confirmed" in out
    )


def test_fedmq_audit_says_ok_for_a_sound_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path, [start(0), applied("a", 1), published(1, "d1")], confirmed=["a"])

    assert main(["audit", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "problems": [],
        "fates": {"applied": 1},
        "applied": 1,
    }


def test_a_synchronous_round_is_a_commit_of_its_own() -> None:
    round_closed = {"event": "round", "version": 1, "contributors": 2, "commit": 3}
    audit = [start(0), applied("a", 1), applied("b", 2), round_closed, published(1, "d1")]

    report = check_run(RunEvidence(audit, confirmed=["a", "b"], final_commit=3))

    assert report.ok, report.problems
