"""A longer, seeded run of broker-node failures than CI's (tests/e2e/test_cluster_faults.py).

An aggregator and 3 workers on a private three-node cluster; a seeded plan of
faults (SIGKILL the results leader's member, SIGKILL a random member, SIGSTOP
the leader's member for four tick times), each followed by bringing the
member back, then the run finishes and the audit judges it. Reported: faults
injected, the slowest recovery after a kill and after a pause, and what the
audit found. ``FEDMQ_SOAK_SEED`` picks another plan.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable

from bench import Context, Row
from broker.settings import BrokerSettings
from fedmq.audit import check_run
from fedmq.commands.audit import gather_evidence, queue_contents, worker_event_files
from harness.cluster_faults import ClusterRun
from harness.procs import Federation
from harness.rabbit_cluster import RabbitCluster

SEED = int(os.environ.get("FEDMQ_SOAK_SEED", "11"))
TASK = ["--partition", "dirichlet", "--dirichlet-alpha", "0.5"]
FAULTS = ("kill-leader", "kill-any", "pause-leader")


def inject(driver: ClusterRun, cluster: RabbitCluster, fault: str, rng: random.Random) -> None:
    if fault == "pause-leader":
        driver.pause(driver.leader_index())
        return
    index = driver.leader_index() if fault == "kill-leader" else rng.randrange(len(cluster.nodes))
    driver.kill(index, "results leader" if fault == "kill-leader" else "a member")
    cluster.restart(index)


def run(ctx: Context) -> Iterable[Row]:
    rounds, versions = (2, 500) if ctx.quick else (12, 4000)
    rng = random.Random(SEED)
    plan = [rng.choice(FAULTS) for _ in range(rounds)]
    ctx.log(f"cluster soak: seed {SEED}, {versions} versions, plan {plan}")
    with RabbitCluster(base=ctx.scratch("soak-cluster")).running() as cluster:
        fed = Federation(namespace="soak", amqp_url=cluster.amqp_url, run_dir=ctx.scratch("soak"))
        flags = ["--max-versions", str(versions), "--strategy", "fedasync", *TASK]
        driver = ClusterRun(fed, cluster, flags, ["--delay", "0.3", *TASK], say=ctx.log)
        try:
            driver.launch()
            driver.advance(30)
            for fault in plan:
                inject(driver, cluster, fault, rng)
                driver.advance(20)
            code = driver.finish(timeout=3600)
        finally:
            fed.close()
        settings = BrokerSettings(amqp_url=cluster.amqp_url, namespace="soak", connect_attempts=3)
        report = check_run(
            gather_evidence(
                fed.run_dir,
                event_files=worker_event_files(fed.run_dir, None),
                queues=queue_contents(settings),
            )
        )
    yield from rows(driver, plan, code, report.ok, report.problems)


def rows(
    driver: ClusterRun, plan: list[str], code: int, ok: bool, problems: list[str]
) -> Iterable[Row]:
    def slowest(kind: str) -> str:
        times = [r.resumed_after for r in driver.recoveries if r.fault.startswith(kind)]
        if not times:
            return "none injected"
        return "never" if None in times else f"{max(t for t in times if t is not None):.1f} s"

    note = f"seed {SEED}: " + ", ".join(plan)
    yield Row("cluster soak", "faults injected", str(len(plan)), note=note)
    yield Row("cluster soak", "slowest resume after a SIGKILL", slowest("SIGKILL"))
    yield Row("cluster soak", "slowest resume after a SIGSTOP", slowest("SIGSTOP"))
    verdict = "nothing lost, nothing applied twice" if ok else "; ".join(problems)[:200]
    yield Row(
        "cluster soak", "audit", verdict, note=f"aggregator exit {code}", met=ok and code == 0
    )
