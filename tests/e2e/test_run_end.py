"""The edges of a run: a restart after the end leaves the run's artefacts as they were; updates
still queued at the end are acked and audited, not left behind; a worker that attaches after the
end gets the final model and stops, and a new run in the namespace does not stop its workers with
the old one's."""

from __future__ import annotations

import json

import pytest

from broker.connection import AmqpSession
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from fedmq.commands.audit import queue_contents
from harness.procs import Federation, wait_for
from tests.e2e.test_poison import digits_update

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def run_to_the_end(fed: Federation, versions: int, partitions: int) -> None:
    """An aggregator and worker 0 of ``partitions``, until the aggregator stops at ``versions``."""
    agg = fed.aggregator("--max-versions", str(versions), num_partitions=partitions)
    fed.worker(0, num_partitions=partitions)
    assert agg.wait(timeout=90) == 0, fed.log("aggregator.log")[-3000:]


def test_a_restart_after_the_end_leaves_summary_and_final_model_as_they_were(
    federation: Federation,
) -> None:
    fed = federation
    run_to_the_end(fed, 5, partitions=1)
    summary = (fed.run_dir / "summary.json").read_text()
    model = (fed.run_dir / "final_model.npz").read_bytes()
    assert json.loads(summary)["accuracy"] is not None

    # As compose would after a SIGKILL just past the end: the same run, restarted.
    again = fed.aggregator("--max-versions", "5", num_partitions=1)

    assert again.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    assert (fed.run_dir / "summary.json").read_text() == summary
    assert (fed.run_dir / "final_model.npz").read_bytes() == model


@pytest.mark.parametrize("batch", ["1", "8"])  # 8: one batch holds them all, and must stop at 3
def test_updates_still_queued_at_the_end_are_acked_and_audited_as_after_final(
    federation: Federation, amqp_url: str, batch: str
) -> None:
    fed = federation
    settings = BrokerSettings(amqp_url=amqp_url, namespace=fed.namespace)
    names = Names(fed.namespace)
    ids = [f"queued-update-{i:02d}" for i in range(8)]
    with AmqpSession(settings) as session:
        declare_topology(session, names)
        for uid in ids:
            session.publish(
                names.inbox_exchange,
                UPDATE_KEY,
                digits_update(uid),
                update_properties(uid, "guest", 0),
            )

    agg = fed.aggregator("--max-versions", "3", "--prefetch", batch, "--max-batch", batch)

    assert agg.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    after = [e for e in fed.audit() if e["event"] == "rejected" and e["reason"] == "after-final"]
    assert applied == ids[:3]
    assert [e["update_id"] for e in after] == ids[3:]
    assert all(not e["dead_lettered"] and e["worker_id"] == "w0" for e in after)
    assert queue_contents(settings) == ([], {})  # nothing left behind, nothing dead-lettered


def first_models(fed: Federation, worker_id: str) -> list[int]:
    """The version of the first model a worker received on each attach (its event file)."""
    return [e["version"] for e in fed.worker_events(worker_id) if e["event"] == "model-received"]


def confirmed(fed: Federation, worker_id: str) -> int:
    return sum(e["event"] == "confirmed" for e in fed.worker_events(worker_id))


def test_a_worker_that_attaches_after_the_end_gets_the_final_model_and_stops(
    federation: Federation,
) -> None:
    fed = federation
    run_to_the_end(fed, 4, partitions=2)
    final = fed.latest_version()

    late = fed.worker(1, num_partitions=2)  # nobody is left to answer its model request

    assert late.wait(timeout=30) == 0, fed.log("w1.log")[-3000:]
    assert first_models(fed, "w1") == [final]
    assert confirmed(fed, "w1") == 0  # it trained nothing on a finished run
    assert "stopped (final model received)" in fed.log("w1.log")


def test_a_new_run_in_the_namespace_does_not_stop_its_workers_with_the_old_final_model(
    federation: Federation, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = federation
    run_to_the_end(first, 3, partitions=1)
    # A fresh run (a new state directory) in the same namespace, its worker started once the new
    # run has published its first version.
    second = Federation(first.namespace, first.amqp_url, tmp_path_factory.mktemp("second-run"))
    try:
        agg = second.aggregator("--max-versions", "3", num_partitions=1)
        wait_for(lambda: second.latest_version() >= 0, 60, "the second run's first version")
        worker = second.worker(0, num_partitions=1)
        assert agg.wait(timeout=90) == 0, second.log("aggregator.log")[-3000:]
        assert worker.wait(timeout=30) == 0, second.log("w0.log")[-3000:]
        assert confirmed(second, "w0") >= 1, second.log("w0.log")[-3000:]
    finally:
        second.close()
