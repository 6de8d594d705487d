"""Benchmark processes: start them, and read what the kernel says they used (peak RSS, CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    """What a finished process used: exit status, wall seconds, CPU seconds, peak resident set (bytes)."""

    returncode: int
    wall: float
    cpu: float
    peak_rss: int


class Process:
    """A child process whose resource usage is collected with ``wait4`` when it ends."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = open(log, "ab")
        self.started = time.monotonic()
        self.usage: Usage | None = None
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def wait(self, timeout: float) -> Usage:
        """Reap the process (killing it at ``timeout``) and return what it used."""
        deadline = time.monotonic() + timeout
        while self.usage is None:
            if time.monotonic() > deadline:
                os.kill(self.popen.pid, signal.SIGKILL)
                self._reap(0)
            else:
                self._reap(os.WNOHANG) or time.sleep(0.05)
        return self.usage

    def _reap(self, flags: int) -> bool:
        pid, status, rusage = os.wait4(self.popen.pid, flags)
        if not pid:
            return False
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self._out.close()
        self.usage = Usage(self.popen.returncode, time.monotonic() - self.started, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss * 1024)
        return True

    def terminate(self) -> None:
        """SIGTERM, unless it has already been reaped (never ``Popen.poll``: that would reap it without its usage)."""
        if self.usage is None:
            os.kill(self.popen.pid, signal.SIGTERM)

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.0f} MB"
