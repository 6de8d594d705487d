"""The comparison's tables (pure): time to the target and accuracy at fixed times, as ratios."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench.flower.curves import Curve, accuracy_at, speedup, time_to

PEER = "flower"
PEER_LABEL = "Flower 1.42 FedAvg"


def _seconds(value: float | None, ran: float) -> str:
    return f"not reached in {ran:.0f} s" if value is None else f"{value:.0f} s"


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def time_table(
    curves: Mapping[str, Curve], ran: Mapping[str, float], target: float, floor: float | None
) -> str:
    """One row per fedmq strategy: its time to ``target`` against Flower's, as a speed-up (and
    whether it meets ``floor``; None: no floor column).
    """
    theirs = time_to(curves[PEER], target)
    judged = "" if floor is None else f" floor (>= {floor:g}x) |"
    lines = [
        f"| runtime | time to {target:.4f} | Flower's time / this |{judged}",
        "| --- | --- | --- |" + ("" if floor is None else " --- |"),
        f"| {PEER_LABEL} | {_seconds(theirs, ran[PEER])} | 1 |" + ("" if floor is None else " |"),
    ]
    for name, curve in curves.items():
        if name != PEER:
            lines.append(_time_row(name, curve, theirs, ran, target, floor))
    return "\n".join(lines)


def _time_row(
    name: str,
    curve: Curve,
    theirs: float | None,
    ran: Mapping[str, float],
    target: float,
    floor: float | None,
) -> str:
    ours = time_to(curve, target)
    if ours is None:
        shown, met = "-", "not met"
    else:
        ratio, exact = speedup(ours, theirs, ran[PEER])
        shown = f"{ratio:.1f}x" if exact else f">= {ratio:.1f}x (lower bound)"
        met = "met" if floor is not None and ratio >= floor else "not met" if exact else "undecided"
    judged = "" if floor is None else f" {met} |"
    return f"| fedmq {name} | {_seconds(ours, ran[name])} | {shown} |{judged}"


def accuracy_table(curves: Mapping[str, Curve], checkpoints: Sequence[float]) -> str:
    """Accuracy of each runtime's latest evaluation at each time, and its ratio to Flower's."""
    head = " | ".join(f"{t:.0f} s" for t in checkpoints)
    lines = [f"| runtime | {head} |", "| --- |" + " --- |" * len(checkpoints)]
    peer = [accuracy_at(curves[PEER], t) for t in checkpoints]
    for name, curve in curves.items():
        cells = []
        for t, theirs in zip(checkpoints, peer, strict=True):
            ours = accuracy_at(curve, t)
            ratio = "" if name == PEER or not (ours and theirs) else f" ({ours / theirs:.2f}x)"
            cells.append(_acc(ours) + ratio)
        label = PEER_LABEL if name == PEER else f"fedmq {name}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
