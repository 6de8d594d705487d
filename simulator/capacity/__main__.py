"""``python -m simulator.capacity``: size a scale-out federation, then simulate it.

Without ``--nodes``/``--edges`` it finds the smallest platform under
``--target`` utilisation and simulates that; with them, it simulates the
platform given. Prints markdown tables: the sizing, each component's
utilisation (offered and simulated) and queueing delay, staleness, and the
nodes needed for other per-node byte budgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace

from simulator.capacity.load import Federation, Load, Platform, offered
from simulator.capacity.run import Outcome, Spread, simulate
from simulator.capacity.sizing import size

BUDGETS = (250.0, 500.0, 1000.0, 2500.0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator.capacity", description=__doc__)
    f, q = Federation(), Platform()
    p.add_argument("--clients", type=int, default=f.clients)
    p.add_argument("--updates-per-hour", type=float, default=f.updates_per_hour)
    p.add_argument("--model-mb", type=float, default=f.model_mb)
    p.add_argument("--buffer-size", type=int, default=f.buffer_size, help="K (the least tried)")
    p.add_argument("--train", default=f.train, help="download-to-upload seconds (a spec)")
    p.add_argument("--replication", type=int, default=q.replication)
    p.add_argument("--node-mb-s", type=float, default=q.node_mb_s, help="per node, in + out")
    p.add_argument("--edge-mb-s", type=float, default=q.edge_mb_s)
    p.add_argument("--root-mb-s", type=float, default=q.root_mb_s)
    p.add_argument("--step-seconds", type=float, default=q.step_seconds)
    p.add_argument("--nodes", type=int, help="simulate this many nodes (default: sized)")
    p.add_argument("--edges", type=int, help="simulate this many edges (default: sized)")
    p.add_argument("--target", type=float, default=0.7, help="utilisation to stay under")
    p.add_argument("--horizon", type=float, default=600.0, help="virtual seconds of arrivals")
    p.add_argument("--seed", type=int, default=0)
    return p


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def seconds(s: Spread) -> str:
    return f"{s.mean:.3f} / {s.p99:.3f} s"


def components(load: Load, out: Outcome) -> str:
    w = out.waits
    rows = [
        ("broker node (busiest)", pct(load.node), pct(max(out.nodes)), seconds(w["broker node"])),
        ("edge (busiest)", pct(load.edge), pct(max(out.edges)), seconds(w["edge"])),
        ("root", pct(load.root), pct(out.root), seconds(w["root"])),
        ("buffer: waiting for K", "", "", seconds(w["buffer (K ready)"])),
    ]
    return table(("component", "offered", "simulated", "wait mean / p99"), rows)


def summary(fed: Federation, plat: Platform, out: Outcome) -> str:
    s = out.staleness
    stale = f"mean {s.mean:.1f}, p50 {s.p50:.0f}, p90 {s.p90:.0f}, p99 {s.p99:.0f}"
    rows = [
        ("arrivals", f"{fed.arrival_rate:.1f} updates/s; {out.arrivals} in {out.span:.0f} s"),
        ("applied + left in the buffer", f"{out.applied} + {out.buffered} = {out.arrivals}"),
        ("versions", f"{out.versions} ({fed.version_rate:.2f}/s offered)"),
        ("staleness (versions)", stale),
        ("arrival to applied", seconds(out.sojourn)),
    ]  # fmt: skip
    return table(("quantity", "simulated"), rows)


def budgets(fed: Federation, plat: Platform, target: float) -> str:
    rows = []
    for budget in BUDGETS:
        sized = size(fed, replace(plat, node_mb_s=budget), target)
        rows.append((f"{budget:.0f} MB/s", sized.nodes, f"{sized.link_gbit_s:.1f} Gbit/s"))
    return table(("node byte budget", "nodes", "link per node"), rows)


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    fed = Federation(
        clients=a.clients, updates_per_hour=a.updates_per_hour, model_mb=a.model_mb,
        buffer_size=a.buffer_size, train=a.train,
    )  # fmt: skip
    plat = Platform(
        replication=a.replication, node_mb_s=a.node_mb_s, edge_mb_s=a.edge_mb_s,
        root_mb_s=a.root_mb_s, step_seconds=a.step_seconds,
    )  # fmt: skip
    sized = size(fed, plat, a.target)
    fed = replace(fed, buffer_size=sized.buffer_size)
    plat = replace(plat, nodes=a.nodes or sized.nodes, edges=a.edges or sized.edges)
    load = offered(fed, plat)
    out = simulate(fed, plat, horizon=a.horizon, seed=a.seed, warmup=a.horizon / 3)
    print(
        f"{plat.nodes} broker nodes, {plat.edges} edges, K = {fed.buffer_size}; each node "
        f"carries {load.node_mb_s:.0f} MB/s ({load.link_gbit_s:.1f} Gbit/s; a link of "
        f"{load.link_gbit_s / a.target:.1f} Gbit/s keeps it under {pct(a.target)})\n"
    )
    print(components(load, out), summary(fed, plat, out), sep="\n\n", end="\n\n")
    print(budgets(fed, plat, a.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
