"""The roster file: which workers are provisioned and which revoked (see
``aggregator.core.identity``).

``fedmq broker add-worker/remove-worker --roster FILE`` write it; the
aggregator re-reads it whenever it changes, so a revocation also refuses
the revoked worker's updates that are still queued.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from aggregator.core.aggregator import Aggregator
from aggregator.core.identity import IdentityMode, IdentityPolicy, Roster

log = logging.getLogger("fedmq.aggregator")


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
        os.chmod(tmp, 0o600)  # who is provisioned and who revoked is the operator's business
        os.replace(tmp, self.path)

    def update(self, change: Callable[[Roster], Roster]) -> Roster:
        """Load, change and save (one operator at a time)."""
        roster = change(self.load())
        self.save(roster)
        return roster


class RosterWatcher:
    """Keeps the core's identity policy in step with the roster file (if there is one)."""

    def __init__(self, mode: IdentityMode, path: str | None) -> None:
        self.mode = mode
        self.file = RosterFile(path) if path else None

    def policy(self) -> IdentityPolicy:
        """The policy as the roster file says now."""
        return IdentityPolicy(self.mode, self.file.load() if self.file else None)

    def refresh(self, core: Aggregator) -> None:
        """Pick up workers added or revoked since the roster was last read."""
        if self.file is None:
            return
        try:
            roster = self.file.reload_if_changed()
        except ValueError as exc:
            log.warning("keeping the previous roster: %s is invalid (%s)", self.file.path, exc)
            return
        if roster is not None:
            core.identity = IdentityPolicy(self.mode, roster)
            log.info(
                "roster: %d active, %d revoked workers", len(roster.active), len(roster.revoked)
            )
