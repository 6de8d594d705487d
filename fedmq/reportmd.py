"""The markdown summary of ``fedmq report`` (pure: run data and figure paths in, text out)."""

from __future__ import annotations

from pathlib import Path

from fedmq.rundata import RunData


def _fmt(value: object, spec: str = "") -> str:
    if value is None:
        return "n/a"
    return format(value, spec) if spec else str(value)


def headline_rows(data: RunData) -> list[tuple[str, str]]:
    s = data.summary or {}
    last_eval = data.evals[-1] if data.evals else {}
    staleness = data.staleness_counts()
    applied = sum(staleness.values())
    stale = sum(n for k, n in staleness.items() if k > 0)
    rejected = ", ".join(f"{k} {v}" for k, v in data.rejected.most_common()) or "none"
    return [
        ("run", _fmt(s.get("run_id"))),
        (
            "stopped because",
            _fmt(s.get("stopped_because") or ("still running?" if not s else None)),
        ),
        ("final version", _fmt(s.get("version", last_eval.get("version")))),
        ("training time", f"{_fmt(s.get('elapsed', last_eval.get('elapsed')), '.1f')} s"),
        ("test accuracy", _fmt(s.get("accuracy", last_eval.get("accuracy")), ".4f")),
        ("test loss", _fmt(s.get("loss", last_eval.get("loss")), ".4f")),
        ("updates applied", str(applied)),
        ("updates rejected", f"{sum(data.rejected.values())} ({rejected})"),
        ("updates / s", _fmt(s.get("updates_per_second"))),
        ("versions / s", _fmt(s.get("versions_per_second"))),
        (
            "staleness mean / max",
            f"{sum(k * n for k, n in staleness.items()) / applied:.2f} / {max(staleness)}"
            if applied
            else "n/a",
        ),
        ("stale updates applied", f"{100 * stale / applied:.1f} %" if applied else "n/a"),
    ]


def summary_markdown(data: RunData, figures: list[Path], out: Path) -> str:
    lines = [f"# fedmq run report: `{data.run_dir}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in headline_rows(data)]
    counts, mean_staleness = data.updates_per_worker(), data.worker_staleness()
    if counts:
        lines += [
            "",
            "## Workers",
            "",
            "| worker | applied updates | mean staleness |",
            "|---|---:|---:|",
        ]
        lines += [f"| {w} | {n} | {mean_staleness[w]:.2f} |" for w, n in counts.items()]
    lines += ["", "## Figures", ""]
    lines += [
        f"![{p.stem.replace('_', ' ')}]({p.relative_to(out) if p.is_relative_to(out) else p})"
        for p in figures
    ]
    return "\n".join(lines) + "\n"
