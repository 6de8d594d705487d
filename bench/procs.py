"""Benchmark processes: start them, and read what the kernel says they used (peak RSS, CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Usage:
    """What a finished process used: exit status, wall seconds, CPU seconds, peak resident set
    (bytes).
    """

    returncode: int
    wall: float
    cpu: float
    peak_rss: int


class Process:
    """``python -m module args`` whose CPU (``wait4``) and peak RSS (``bench.measured``) are
    collected at exit.
    """

    def __init__(
        self, module: str, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        self.report = log.with_suffix(".peak-rss")
        self._out = open(log, "ab")
        self.started = time.monotonic()
        self.usage: Usage | None = None
        command = [sys.executable, "-m", "bench.measured", str(self.report), module, *args]
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
        self.popen = subprocess.Popen(command, stdout=self._out, stderr=subprocess.STDOUT, env=env)

    def wait(self, timeout: float) -> Usage:
        """Reap the process (killing it at ``timeout``) and return what it used."""
        deadline = time.monotonic() + timeout
        while self.usage is None:
            if time.monotonic() > deadline:
                os.kill(self.popen.pid, signal.SIGKILL)
                self._reap(0)
            elif not self._reap(os.WNOHANG):
                time.sleep(0.05)
        return self.usage

    def _reap(self, flags: int) -> bool:
        pid, status, rusage = os.wait4(self.popen.pid, flags)
        if not pid:
            return False
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self._out.close()
        peak = int(self.report.read_text()) if self.report.exists() else 0
        self.usage = Usage(
            self.popen.returncode,
            time.monotonic() - self.started,
            rusage.ru_utime + rusage.ru_stime,
            peak,
        )
        return True

    def terminate(self) -> None:
        """SIGTERM, unless it has already been reaped (never ``Popen.poll``: that would reap it
        without its usage).
        """
        if self.usage is None:
            os.kill(self.popen.pid, signal.SIGTERM)

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.0f} MB"
