"""Every aggregation mode through the fault-injection run: nothing lost, nothing applied twice.

For each mode (FedAsync, FedBuff, FedAvg, central DP on FedBuff, the norm
bound, robust FedBuff with the coordinate-wise median), on one private
RabbitMQ node: the aggregator SIGKILLs itself at a failpoint (rotating with
the mode) and is SIGKILLed at a random moment, the broker's Erlang VM is
SIGKILLed and started again, a worker is SIGKILLed mid-fit, the aggregator is
stopped (SIGSTOP) past its heartbeat (``harness.mode_faults``). Then two
judges must agree that every confirmed update was applied exactly once (or
rejected with a reason, or still waits): the audit (``fedmq.audit``), and an
independent check (``harness.delivery``) from the workers' event files, a
witness of every broadcast version and the final checkpoint. With DP, the
budget is never exceeded and no noise draw is used for two versions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mode_faults import DP_BUDGET, MODES, ModeRun, describe, make_plan
from harness.mode_judge import verdict
from harness.procs import Federation
from harness.rabbit_node import RabbitNode
from harness.witness import Witness

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

SEED = int(os.environ.get("FEDMQ_FAULT_SEED", "7"))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    with RabbitNode(base=tmp_path_factory.mktemp("rabbit")).running() as running:
        yield running


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_survives_the_faults(
    mode: str, node: RabbitNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = Federation(namespace=f"faults-{mode}", amqp_url=node.amqp_url, run_dir=tmp_path / mode)
    fed.run_dir.mkdir()
    plan = make_plan(SEED, list(MODES).index(mode))
    run = ModeRun(fed, node, MODES[mode], ends_by_itself=mode == "dp")
    witness = Witness(node.amqp_url, fed.namespace).start()
    try:
        run.run(plan)
    finally:
        witnessed = witness.close()
        fed.close()

    judged = verdict(fed, witnessed, dp_budget=DP_BUDGET if mode == "dp" else None)
    with capsys.disabled():
        print(f"\n{mode} (seed {SEED}): " + describe(run, judged))

    assert judged.audit.ok, judged.audit.problems
    assert judged.independent == []
    assert judged.privacy == []
    assert len(run.survived) == 5 and len(judged.audit.lives) == 3
    assert judged.witnessed_versions > 0
    if mode == "dp":  # the budget, not a stop rule, ended the run: it was reached and held
        summary = fed.summary()
        assert summary is not None and summary["stopped_because"].startswith("privacy budget")
