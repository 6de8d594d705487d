"""Event logs: a record torn by a crash is skipped, and never swallows the next one."""

from __future__ import annotations

from pathlib import Path

from runtime.eventlog import EventLog, read_events


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"event":"applied","update_id":"a"}\n{"event":"appl')

    log = EventLog(path)
    log.write("start", commit=1)
    log.close()

    assert [e["event"] for e in read_events(path)] == ["applied", "start"]


def test_a_log_that_never_writes_holds_no_file_and_drops_writes_after_close(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.jsonl"
    log = EventLog(path)

    assert not path.exists()  # nothing opened (or created) until the first record
    log.write("one")
    log.close()
    log.write("two")

    assert [e["event"] for e in read_events(path)] == ["one"]
