"""One active aggregator per federation: two locks, one on the disk and one on the broker.

``StateLock``: an exclusive ``fcntl`` lock on the state directory held for the
aggregator's whole life. A second aggregator started on the same state
directory (a standby replica sharing the volume) finds the lock taken and
waits; the kernel releases the lock the moment the holder dies, however it
dies (SIGKILL included), and the standby then restores the checkpoint and
carries on. POSIX record locks (``lockf``) also work on NFS, where ``flock``
may not.

``hold_federation``: the broker's lease, an exclusive queue ``<ns>.aggregator``
taken on every attach before anything is published. It covers what a file lock
cannot see: a second aggregator of the same namespace on another state
directory (another host, a mistyped volume, a script using ``fedmq.api``), which
would otherwise publish its own versions and answer model requests with its own
model beside the first. It waits until the holder's connection is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from broker.connection import AmqpSession
from broker.errors import ResourceLocked
from broker.names import Names
from broker.topology import claim_aggregator_lease

log = logging.getLogger("fedmq.aggregator")

LOCK_NAME = "aggregator.lock"
#: How often a standby tries the lock: what it adds, at most, to a takeover.
POLL_SECONDS = 0.05
#: How often an aggregator waiting for the broker's lease tries it (a round trip each time).
LEASE_POLL_SECONDS = 0.25


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


def hold_federation(session: AmqpSession, names: Names, stop: threading.Event) -> bool:
    """Take the federation's lease on the broker for this connection, waiting while another
    aggregator's connection holds it; False if ``stop`` was set first.
    """
    waiting = False
    while not stop.is_set():
        try:
            claim_aggregator_lease(session, names)
        except ResourceLocked:
            session.reset_channel()  # the 405 closed the channel
            if not waiting:
                log.warning(
                    "another aggregator holds the lease %s of this federation: waiting until its "
                    "connection is gone (nothing is published meanwhile)",
                    names.aggregator_lease,
                )
            waiting = True
            session.process_events(LEASE_POLL_SECONDS)  # keeps the heartbeats going
            continue
        if waiting:
            log.warning(
                "took the lease %s: this aggregator is now the active one", names.aggregator_lease
            )
        return True
    return False
