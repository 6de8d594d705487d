"""Accuracy curves of one comparison run (pure): time to a target and accuracy at fixed times.

A curve is the server's evaluations in order, each ``(seconds since the server started,
test accuracy)``; every runtime in the comparison is read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

Curve = Sequence[tuple[float, float]]


def time_to(curve: Curve, target: float) -> float | None:
    """Seconds to the first evaluation at or above ``target`` (None: never reached)."""
    return next((t for t, acc in curve if acc >= target), None)


def best(curve: Curve) -> float:
    """The highest accuracy the curve reached (0 for no evaluation)."""
    return max((acc for _, acc in curve), default=0.0)


def accuracy_at(curve: Curve, seconds: float) -> float | None:
    """The accuracy of the last evaluation made by ``seconds`` (None: none made yet)."""
    done = [acc for t, acc in curve if t <= seconds]
    return done[-1] if done else None


def speedup(ours: float | None, theirs: float | None, theirs_ran: float) -> tuple[float, bool]:
    """How many times sooner we reached the target than the peer: (ratio, exact).

    A peer that never reached it within ``theirs_ran`` seconds gives a lower bound
    (``exact`` False): it would have needed at least that long.
    """
    if ours is None:
        raise ValueError("no speed-up: fedmq did not reach the target")
    if theirs is None:
        return theirs_ran / ours, False
    return theirs / ours, True
