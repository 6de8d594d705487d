"""The roster file: which workers are provisioned and which revoked (see ``aggregator.core.identity``).

``fedmq broker add-worker/remove-worker --roster FILE`` write it; the
aggregator re-reads it whenever it changes, so a revocation also refuses
the revoked worker's updates that are still queued.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from aggregator.core.identity import Roster


class RosterFile:
    """A roster on disk, replaced atomically on every write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None

    def load(self) -> Roster:
        """The roster now; a missing file is an empty roster (nobody is admitted)."""
        try:
            stat = self.path.stat()
            text = self.path.read_text()
        except FileNotFoundError:
            self._stamp = None
            return Roster()
        self._stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return Roster.from_json(text)

    def reload_if_changed(self) -> Roster | None:
        """The roster if the file changed since the last load, else ``None``."""
        try:
            stat = self.path.stat()
            stamp: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return None
        return self.load()

    def save(self, roster: Roster) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".roster-")
        with os.fdopen(fd, "w") as out:
            out.write(roster.to_json())
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def update(self, change: Callable[[Roster], Roster]) -> Roster:
        """Load, change and save (one operator at a time)."""
        roster = change(self.load())
        self.save(roster)
        return roster
