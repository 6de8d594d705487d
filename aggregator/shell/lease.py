"""One active aggregator per state directory: an exclusive ``fcntl`` lock held for its whole life.

A second aggregator started on the same state directory (a standby replica
sharing the volume) finds the lock taken and waits; the kernel releases the
lock the moment the holder dies, however it dies (SIGKILL included), and the
standby then restores the checkpoint and carries on. POSIX record locks
(``lockf``) also work on NFS, where ``flock`` may not.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

log = logging.getLogger("fedmq.aggregator")

LOCK_NAME = "aggregator.lock"
#: How often a standby tries the lock: what it adds, at most, to a takeover.
POLL_SECONDS = 0.05


class StateLock:
    """The lock on ``directory``; ``acquire`` or ``wait`` for it, ``release`` it (or die)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it now."""
        import fcntl  # POSIX only; imported here so the module imports everywhere

        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN or EACCES: another process holds it
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it (for the standby's log line)."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def wait(self, stop: threading.Event) -> bool:
        """Stand by until the lock is ours (True) or ``stop`` is set (False)."""
        if self.acquire():
            return True
        log.warning(
            "standing by: %s is held by %s; taking over when it is released",
            self.path,
            self.holder(),
        )
        while not stop.wait(POLL_SECONDS):
            if self.acquire():
                log.warning("took over %s: this aggregator is now the active one", self.path)
                return True
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
