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
    curves: Mapping[str, Curve], ran: Mapping[str, float], target: float, floor: float
) -> str:
    """One row per fedmq strategy: its time to ``target`` against Flower's, as a speed-up."""
    theirs = time_to(curves[PEER], target)
    lines = [
        f"| runtime | time to {target:.4f} | Flower's time / this | floor (>= {floor:g}x) |",
        "| --- | --- | --- | --- |",
        f"| {PEER_LABEL} | {_seconds(theirs, ran[PEER])} | 1 | |",
    ]
    for name, curve in curves.items():
        if name == PEER:
            continue
        ours = time_to(curve, target)
        if ours is None:
            lines.append(f"| fedmq {name} | {_seconds(None, ran[name])} | - | not met |")
            continue
        ratio, exact = speedup(ours, theirs, ran[PEER])
        shown = f"{ratio:.1f}x" if exact else f">= {ratio:.1f}x (lower bound)"
        met = "met" if ratio >= floor else ("not met" if exact else "undecided")
        lines.append(f"| fedmq {name} | {_seconds(ours, ran[name])} | {shown} | {met} |")
    return "\n".join(lines)


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
