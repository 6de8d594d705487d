"""Scale-out throughput: a root and 1, 2 and 4 edges against one plain FedBuff aggregator.

Each run gets a fresh namespace on one private node with the
``rabbitmq_consistent_hash_exchange`` plugin (the machine's broker is not
touched). The same seeded deltas (``WORKERS`` worker ids, so the hash spreads
them) are published first, with confirms, then the processes start and drain
them: the root and N edges (``python -m aggregator.scaleout``), or the plain
aggregator (``--strategy fedbuff``, the same K). Rates are the root's view,
timed from the first committed version to the last (start-up excluded), and
compared with N = 1 and with the plain aggregator of the same run. CPU is
each process's (and the broker's) over its life.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aggregator.scaleout.state import read_commits
from bench import Context, Row
from bench.federation import BenchFederation
from bench.procs import Process, Usage
from broker.connection import AmqpSession
from broker.declarations import QueueLimits
from broker.edges import EdgeNames, declare_edges
from broker.names import UPDATE_KEY
from broker.properties import update_properties
from broker.settings import BrokerSettings
from harness.rabbit_node import RabbitNode
from schemas.codec import encode
from schemas.messages import ClientUpdate

WORKERS = 64
PLUGINS = ("rabbitmq_consistent_hash_exchange",)
TIMEOUT = 900.0


@dataclass(frozen=True)
class Case:
    label: str
    floats: int
    updates: int
    k: int


CASES = [
    Case("40 KB", 10_000, 1_200, 20),
    Case("4 MB", 1_000_000, 240, 20),
    Case("40 MB", 10_000_000, 32, 4),
]
QUICK_CASES = [Case("40 KB", 10_000, 40, 10)]
EDGE_COUNTS, QUICK_EDGE_COUNTS = (1, 2, 4), (1, 2)
#: Rounds of every configuration, interleaved, so that a change of the machine's load hits all.
REPEATS, QUICK_REPEATS = 3, 1


@dataclass(frozen=True)
class Measured:
    """One drain of the same updates: updates/s and versions/s, cores used per process, CPU
    milliseconds per update per role (over the processes' lives, start-up included)."""

    who: str
    rate: float
    versions: float
    cores: dict[str, float]
    cpu_ms: dict[str, float]
    spread: tuple[int, ...] = ()
    #: Every repeat's updates/s, when this is their median.
    repeats: tuple[float, ...] = ()


def median(runs: Sequence[Measured]) -> Measured:
    """The run of median rate (the lower of the middle two), with every run's rate."""
    ranked = sorted(runs, key=lambda m: m.rate)
    chosen = ranked[(len(ranked) - 1) // 2]
    return dataclasses.replace(chosen, repeats=tuple(m.rate for m in runs))


def window(commits: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """(updates/s, versions/s) between the first and the last commit: every commit's updates but
    the first's, over the time between them (the start-up before the first is left out)."""
    if len(commits) < 2:
        raise ValueError(f"need two commits to time a rate, got {len(commits)}")
    span = commits[-1][0] - commits[0][0]
    if span <= 0:
        raise ValueError("the commits are not in time order")
    return sum(n for _, n in commits[1:]) / span, (len(commits) - 1) / span


def cores(usage: Usage) -> float:
    return usage.cpu / usage.wall if usage.wall > 0 else 0.0


def broker_cpu(node: RabbitNode) -> float:
    """CPU seconds the node's Erlang VM has used so far (0 where /proc is missing)."""
    try:
        pid = (node.base / "pid").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def update_id(i: int) -> str:
    return f"upd-{i:06d}"


def updates(case: Case, seed: int) -> list[bytes]:
    """The encoded deltas every run drains: ``case.updates`` of them from ``WORKERS`` workers."""
    rng = np.random.default_rng(seed)
    arrays = {"w": rng.normal(0, 0.01, case.floats).astype(np.float32)}
    return [
        encode(
            ClientUpdate(
                update_id=update_id(i),
                worker_id=f"w{i % WORKERS}",
                base_version=0,
                num_examples=100,
                update_kind="delta",
                train_seconds=0.0,
                arrays=arrays,
            )
        )
        for i in range(case.updates)
    ]


def publish(session: AmqpSession, exchange: str, bodies: Sequence[bytes]) -> None:
    """Publish each body with confirms as worker ``w<i % WORKERS>`` (the hash header)."""
    for i, body in enumerate(bodies):
        props = update_properties(update_id(i), session.username, 0, worker_id=f"w{i % WORKERS}")
        session.publish(exchange, UPDATE_KEY, body, props)


def scaleout_args(settings: BrokerSettings, edges: int, init: Path) -> list[str]:
    return [
        "--edges", str(edges), "--init", str(init), "--amqp-url", settings.amqp_url,
        "--namespace", settings.namespace, "--log-level", "warning",
    ]  # fmt: skip


def run_edges(
    ctx: Context, node: RabbitNode, case: Case, edges: int, bodies: Sequence[bytes]
) -> Measured:
    """Publish ``bodies`` behind ``edges`` edge queues; drain them with a root and the edges."""
    namespace = f"bench-edges-{uuid.uuid4().hex[:8]}"
    settings = BrokerSettings(amqp_url=node.amqp_url, namespace=namespace)
    run_dir = ctx.scratch(namespace)
    init = run_dir / "init.npz"
    np.savez(init, w=np.zeros(case.floats, np.float32))
    names = EdgeNames(namespace)
    with AmqpSession(settings, name="bench-edges") as session:
        declare_edges(session, names, edges, QueueLimits())
        publish(session, names.inbox_exchange, bodies)
        spread = tuple(session.queue_counts(names.edge_queue(i))[0] for i in range(edges))
    common = scaleout_args(settings, edges, init)
    prefetch = ["--prefetch", str(max(2 * case.k, 16))]
    before = broker_cpu(node)
    procs = {
        f"edge {i}": Process(
            "aggregator.scaleout",
            ["edge", *common, "--index", str(i), *prefetch],
            run_dir / f"edge-{i}.log",
        )
        for i in range(edges)
    }
    state_dir = run_dir / "root-state"
    root_flags = ["--state-dir", str(state_dir), "--buffer-size", str(case.k)]
    versions = ["--max-versions", str(case.updates // case.k)]
    root_args = ["root", *common, *root_flags, *versions]
    procs["root"] = Process("aggregator.scaleout", root_args, run_dir / "root.log")
    usage = finish(procs)
    broker = broker_cpu(node) - before
    commits = [(c["time"], int(c["updates"])) for c in read_commits(state_dir)]
    rate, vps = window(commits)
    wall = max(u.wall for u in usage.values())
    used = {**{name: cores(u) for name, u in usage.items()}, "broker": broker / wall}
    edge_cpu = sum(u.cpu for name, u in usage.items() if name != "root")
    cpu = {"edges": edge_cpu, "root": usage["root"].cpu, "broker": broker}
    who = f"{edges} edge{'s' if edges > 1 else ''}"
    return Measured(who, rate, vps, used, per_update_ms(cpu, case.updates), spread)


def per_update_ms(cpu: dict[str, float], count: int) -> dict[str, float]:
    """CPU seconds per role spread over ``count`` updates, in milliseconds."""
    return {role: 1000 * seconds / count for role, seconds in cpu.items()}


def finish(procs: dict[str, Process]) -> dict[str, Usage]:
    """Wait for every process (killing the rest if one fails); what each used."""
    usage: dict[str, Usage] = {}
    try:
        for name in sorted(procs, key=lambda n: n != "root"):
            usage[name] = procs[name].wait(timeout=TIMEOUT)
            if usage[name].returncode != 0:
                raise RuntimeError(f"{name} failed: {procs[name].tail()}")
    finally:
        for name, proc in procs.items():
            if name not in usage:
                proc.terminate()
                proc.wait(timeout=30)
    return usage


def run_plain(ctx: Context, node: RabbitNode, case: Case, bodies: Sequence[bytes]) -> Measured:
    """The same updates drained by one plain aggregator (FedBuff, the same K)."""
    local = dataclasses.replace(ctx, amqp_url=node.amqp_url)
    with BenchFederation(local, "edges-plain") as fed:
        publish(fed.session, fed.names.inbox_exchange, bodies)
        before = broker_cpu(node)
        versions = case.updates // case.k
        proc = fed.aggregator(
            *("--strategy", "fedbuff", "--buffer-size", str(case.k), "--num-partitions", "1"),
            *("--max-versions", str(versions), "--max-staleness", str(case.updates)),
            *("--eval-every", str(10**9)),
            floats=case.floats,
        )
        usage = proc.wait(timeout=TIMEOUT)
        if usage.returncode != 0:
            raise RuntimeError(f"the plain aggregator failed: {proc.tail()}")
        published = [e for e in fed.audit() if e["event"] == "published" and e["version"] >= 1]
        broker = broker_cpu(node) - before
    rate, vps = window([(e["time"], case.k) for e in published])
    used = {"aggregator": cores(usage), "broker": broker / usage.wall}
    cpu = per_update_ms({"aggregator": usage.cpu, "broker": broker}, case.updates)
    return Measured("plain aggregator", rate, vps, used, cpu)


def describe(m: Measured) -> str:
    parts = [f"{name} {c:.2f}" for name, c in m.cores.items()]
    cpu = [f"{role} {ms:.1f} ms" for role, ms in m.cpu_ms.items()]
    spread = f"; queued per edge {list(m.spread)}" if m.spread else ""
    runs = f"median of {', '.join(f'{r:.1f}' for r in m.repeats)} upd/s; " if m.repeats else ""
    return f"{runs}cores: {', '.join(parts)}; CPU per update: {', '.join(cpu)}{spread}"


def rows(case: Case, plain: Measured, runs: Sequence[Measured]) -> Iterable[Row]:
    """One row for the plain aggregator, one per edge count: ratios to N = 1 and to plain."""
    load = f"load {os.getloadavg()[0]:.1f}"
    setup = f"{case.updates} updates, K = {case.k}"
    yield Row(
        "scale-out edges",
        f"{case.label} model, plain aggregator",
        f"{plain.rate:.1f} upd/s, {plain.versions:.2f} versions/s",
        note=f"{setup}; {describe(plain)}; {load}",
    )
    one = runs[0]
    for m in runs:
        yield Row(
            "scale-out edges",
            f"{case.label} model, root + {m.who}",
            f"{m.rate:.1f} upd/s, {m.versions:.2f} versions/s",
            f"{one.rate:.1f} upd/s ({one.who})",
            m.rate / one.rate,
            note=f"{m.rate / plain.rate:.2f}x the plain aggregator; {describe(m)}; {load}",
        )


def one_round(
    ctx: Context, node: RabbitNode, case: Case, counts: Sequence[int], bodies: Sequence[bytes]
) -> list[Measured]:
    """The plain aggregator, then the root with each edge count, on the same updates."""
    runs = [run_plain(ctx, node, case, bodies)]
    runs += [run_edges(ctx, node, case, n, bodies) for n in counts]
    for m in runs:
        ctx.log(f"edges {case.label}: {m.who} {m.rate:.1f} upd/s, {describe(m)}")
    return runs


def run(ctx: Context) -> Iterable[Row]:
    cases, counts = (QUICK_CASES, QUICK_EDGE_COUNTS) if ctx.quick else (CASES, EDGE_COUNTS)
    repeats = QUICK_REPEATS if ctx.quick else REPEATS
    ctx.log("edges: starting a private node with the consistent-hash plugin")
    with RabbitNode(base=ctx.scratch("edges-node"), plugins=PLUGINS).running() as node:
        for case in cases:
            bodies = updates(case, seed=3)
            rounds = [one_round(ctx, node, case, counts, bodies) for _ in range(repeats)]
            plain, *runs = (median(config) for config in zip(*rounds, strict=True))
            yield from rows(case, plain, runs)
