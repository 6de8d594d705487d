"""PNG figures of a run (matplotlib, Agg backend: no display needed).

Each panel is drawn by one function onto an ``Axes``; a figure is one or
more panels saved as a PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedmq.rundata import RunData

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DPI = 110
Panel = Callable[["Axes", RunData], None]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("fedmq report needs matplotlib: pip install 'fedmq[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _eval_curve(x_key: str, x_label: str, y_key: str, title: str) -> Panel:
    def draw(ax: Axes, data: RunData) -> None:
        points = [
            (e[x_key], e[y_key])
            for e in data.evals
            if e.get(x_key) is not None and e.get(y_key) is not None
        ]
        if points:
            ax.plot(*zip(*points, strict=False), marker=".", markersize=3, linewidth=1.2)
        ax.set(xlabel=x_label, ylabel=f"test {y_key}", title=title)
        ax.grid(alpha=0.3)

    return draw


def update_rate(ax: Axes, data: RunData) -> None:
    points = [
        (p["elapsed"], p["updates_per_s"])
        for p in data.progress
        if "updates_per_s" in p and "elapsed" in p
    ]
    if points:
        ax.plot(*zip(*points, strict=False), linewidth=1.2, color="tab:purple")
    ax.set(xlabel="training time (s)", ylabel="updates / s", title="Applied updates per second")
    ax.grid(alpha=0.3)


def staleness(ax: Axes, data: RunData) -> None:
    counts = data.staleness_counts()
    ax.bar(list(counts), list(counts.values()), width=0.9, color="tab:orange")
    ax.set(
        xlabel="staleness (versions behind when applied)",
        ylabel="applied updates",
        title="Staleness of applied updates",
    )
    ax.grid(axis="y", alpha=0.3)


def per_worker(ax: Axes, data: RunData) -> None:
    counts, mean_staleness = data.updates_per_worker(), data.worker_staleness()
    bars = ax.bar(list(counts), list(counts.values()), color="tab:green")
    for bar, worker in zip(bars, counts, strict=False):
        ax.annotate(
            f"{mean_staleness[worker]:.1f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set(
        xlabel="worker",
        ylabel="applied updates",
        title="Updates per worker (labels: mean staleness)",
    )
    ax.tick_params(axis="x", rotation=45 if len(counts) > 6 else 0)
    ax.grid(axis="y", alpha=0.3)


def draw(data: RunData, panels: list[list[Panel]], path: Path, size: tuple[float, float]) -> Path:
    """Panels in a grid (rows of columns), saved as one PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), len(panels[0]), figsize=size, squeeze=False)
    for row, row_panels in zip(axes, panels, strict=False):
        for ax, panel in zip(row, row_panels, strict=False):
            panel(ax, data)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def draw_all(data: RunData, out: Path) -> list[Path]:
    """Every figure of a report, written to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    time_axis, version_axis = ("elapsed", "training time (s)"), ("version", "model version")
    acc_time = _eval_curve(*time_axis, "accuracy", "Accuracy against time")
    return [
        draw(
            data,
            [[acc_time, _eval_curve(*time_axis, "loss", "Loss against time")]],
            out / "accuracy_loss_vs_time.png",
            (10, 3.6),
        ),
        draw(
            data,
            [
                [
                    _eval_curve(*version_axis, "accuracy", "Accuracy against version"),
                    _eval_curve(*version_axis, "loss", "Loss against version"),
                ]
            ],
            out / "accuracy_loss_vs_version.png",
            (10, 3.6),
        ),
        draw(data, [[staleness]], out / "staleness_histogram.png", (6, 3.6)),
        draw(
            data,
            [[per_worker]],
            out / "updates_per_worker.png",
            (max(6.0, 0.5 * len(data.updates_per_worker()) + 2), 3.6),
        ),
        draw(
            data, [[acc_time, update_rate], [staleness, per_worker]], out / "overview.png", (11, 7)
        ),
    ]
