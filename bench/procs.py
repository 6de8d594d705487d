"""Benchmark processes: start them, and read what the kernel says they used (peak RSS, CPU)."""

from __future__ import annotations

import os
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
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def wait(self, timeout: float) -> Usage:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.popen.kill()
                pid, status, rusage = os.wait4(self.popen.pid, 0)
                break
            time.sleep(0.05)
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self._out.close()
        return Usage(self.popen.returncode, time.monotonic() - self.started, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss * 1024)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.0f} MB"
