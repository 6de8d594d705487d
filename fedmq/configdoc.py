"""The configuration reference (``python -m fedmq.configdoc`` writes docs/configuration.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from aggregator.settings import AggregatorSettings
from broker.settings import BrokerSettings
from simulator.settings import SimulationSettings
from training.settings import TaskSettings
from worker.settings import WorkerSettings

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

SECTIONS: list[tuple[str, type[BaseSettings], tuple[type[BaseSettings], ...], str]] = [
    (
        "Broker (every component)",
        BrokerSettings,
        (),
        "Where the broker is and how resources are named.",
    ),
    (
        "Task (aggregator and workers alike)",
        TaskSettings,
        (),
        "Must be identical on every process of a federation.",
    ),
    ("Aggregator (`fedmq aggregator`)", AggregatorSettings, (BrokerSettings, TaskSettings), ""),
    ("Worker (`fedmq worker`)", WorkerSettings, (BrokerSettings, TaskSettings), ""),
    (
        "Simulator (`fedmq simulate`)",
        SimulationSettings,
        (AggregatorSettings,),
        "Also takes the task and aggregator settings that concern neither a broker nor a disk; "
        "times are virtual seconds.",
    ),
]


def env_name(field: str) -> str:
    return "AMQP_URL" if field == "amqp_url" else f"FEDMQ_{field.upper()}"


def _default(info: object) -> str:
    default = getattr(info, "default", PydanticUndefined)
    if getattr(info, "default_factory", None) is not None:
        return "(computed)"
    if default is PydanticUndefined:
        return "(required)"
    return f"`{default}`" if default is not None else "—"


def section(
    title: str, cls: type[BaseSettings], parents: tuple[type[BaseSettings], ...], intro: str
) -> str:
    inherited = {name for parent in parents for name in parent.model_fields}
    lines = [f"## {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |"]
    for name, info in cls.model_fields.items():
        if name in inherited:
            continue
        flag = "--" + name.replace("_", "-")
        description = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{flag}` | `{env_name(name)}` | {_default(info)} | {description} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    head = (
        "# Configuration reference\n\n"
        "Every setting can be given as a flag or as an environment variable; a flag wins. "
        "Generated from the settings models by `python -m fedmq.configdoc`.\n\n"
    )
    return head + "\n".join(section(*s) for s in SECTIONS)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC_PATH
    path.write_text(render())
    print(path)
