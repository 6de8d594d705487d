"""Forensics an attacker cannot falsify: dead letters keep only our headers; a private roster."""

from __future__ import annotations

import stat
from pathlib import Path

from aggregator.core.identity import Roster
from aggregator.shell.roster import RosterFile
from broker.delivery import Properties
from broker.properties import (
    DETAIL_HEADER,
    ORIGINAL_USER_HEADER,
    REASON_HEADER,
    SCHEMA_HEADER,
    dead_letter_properties,
    update_properties,
)

FORGED = {
    REASON_HEADER: "duplicate",  # "nothing to see here"
    DETAIL_HEADER: "harmless",
    ORIGINAL_USER_HEADER: "bob",  # blame another worker
    "x-fedmq-anything": "x",
    "x-first-death-reason": "expired",  # what `fedmq audit` falls back on
    "x-death": [{"reason": "expired"}],
    "note": "hello",
}


def test_a_dead_letter_keeps_none_of_the_senders_fedmq_or_death_headers() -> None:
    original = Properties(user_id=None, headers={**FORGED, SCHEMA_HEADER: 1})

    headers = dead_letter_properties(original, "non-finite", "W has NaN").headers

    assert headers == {
        SCHEMA_HEADER: 1,
        REASON_HEADER: "non-finite",
        DETAIL_HEADER: "W has NaN",
        "x-fedmq-dropped-headers": 7,
    }


def test_the_original_user_header_is_the_broker_validated_user_id_only() -> None:
    original = update_properties("u-1", "alice", 3)
    forged = Properties(user_id="alice", headers={**original.headers, **FORGED})

    headers = dead_letter_properties(forged, "norm-bound", "").headers

    assert headers[ORIGINAL_USER_HEADER] == "alice"
    assert headers[REASON_HEADER] == "norm-bound"
    assert headers["fedmq-base-version"] == 3
    assert "note" not in headers and "x-death" not in headers


def test_the_roster_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    roster = RosterFile(tmp_path / "roster.json")

    roster.save(Roster().with_worker("w1"))
    roster.update(lambda r: r.with_worker("w2"))

    assert stat.S_IMODE((tmp_path / "roster.json").stat().st_mode) == 0o600
