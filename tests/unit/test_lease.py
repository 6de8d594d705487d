"""The state directory's lock: one holder at a time, free again the moment its holder dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.shell.lease import StateLock

HOLD = (
    "import sys; from pathlib import Path; from aggregator.shell.lease import StateLock; "
    "assert StateLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on ``tmp_path`` (POSIX locks are per process)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_the_lock_is_free_again_the_moment_its_holder_is_killed(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = StateLock(tmp_path)
    assert not lock.acquire()
    assert "pid" in lock.holder()

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)

    assert lock.wait(threading.Event())


def test_a_standby_told_to_stop_gives_up_without_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    stop = threading.Event()
    stop.set()

    assert not StateLock(tmp_path).wait(stop)
