"""Append-only JSON-lines logs (metrics, audit, worker events)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


class EventLog:
    """One JSON object per line; ``flush`` after each write, ``fsync`` on demand.

    The file is opened at the first write (an object that never writes holds no
    descriptor) and writes after ``close`` are dropped.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self._file: TextIO | None = None
        self._closed = False

    def _open(self) -> TextIO | None:
        if self._file is None and self.path is not None and not self._closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = _ends_mid_line(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if torn:  # a crash cut the last record short: do not glue the next one onto it
                self._file.write("\n")
        return self._file

    def write(self, event: str, **fields: Any) -> None:
        file = self._open()
        if file is None:
            return
        record = {"event": event, "time": round(time.time(), 6), **fields}
        file.write(json.dumps(record, separators=(",", ":"), default=float) + "\n")
        file.flush()

    def sync(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_mid_line(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every complete record of a log (a torn last line, from a crash, is skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
