"""``python -m bench.measured REPORT MODULE [ARGS...]``: run MODULE as ``__main__``, then write its
peak RSS to REPORT.

The kernel's ``ru_maxrss`` for a child counts the parent's pages from
before ``exec`` (the benchmark process can be the larger), so each process
reports its own high-water mark (``VmHWM``, reset at ``exec``) as it exits.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def peak_rss() -> int:
    """This process's peak resident set, in bytes (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    report, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        Path(report).write_text(str(peak_rss()))


if __name__ == "__main__":
    main()
