"""Named crash points for fault-injection tests.

A failpoint ``POINT:N`` makes the aggregator SIGKILL itself the N-th time
its batch loop reaches ``POINT``, so that a test can land a crash exactly
between two durable steps (which random kill times hit only by luck):

- ``before-checkpoint``: the batch is applied and audited, the checkpoint not written;
- ``after-checkpoint``: the checkpoint is durable, the new version not yet published;
- ``after-publish``: the version is published, the batch not yet acknowledged.

A synchronous round that closes passes the same three points (one count for
batches and rounds), so FedAvg's own commits can be crashed at too.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

POINTS = ("before-checkpoint", "after-checkpoint", "after-publish")
#: The settings field's pattern (one-line errors for a bad ``--failpoint``).
FAILPOINT_PATTERN = r"^(" + "|".join(POINTS) + r"):[1-9][0-9]{0,8}$"


@dataclass(frozen=True)
class Failpoint:
    point: str
    count: int


def parse_failpoint(spec: str) -> Failpoint:
    """``"after-publish:3"`` -> ``Failpoint("after-publish", 3)``; ``ValueError`` otherwise."""
    point, _, count = spec.partition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"failpoint {spec!r} is not POINT:N with POINT one of {', '.join(POINTS)} and N >= 1"
        )
    return Failpoint(point, int(count))


def kill_this_process() -> None:
    """SIGKILL: no ``finally``, no flush, no goodbye to the broker, as in a real crash."""
    os.kill(os.getpid(), signal.SIGKILL)


class Failpoints:
    """Counts arrivals at the armed point and crashes on the N-th; inert when unarmed."""

    def __init__(self, spec: str | None, *, crash: Callable[[], None] = kill_this_process) -> None:
        self._armed = parse_failpoint(spec) if spec else None
        self._crash = crash
        self._arrivals = 0

    def reached(self, point: str) -> None:
        if self._armed is None or point != self._armed.point:
            return
        self._arrivals += 1
        if self._arrivals == self._armed.count:
            self._crash()
