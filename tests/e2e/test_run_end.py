"""The edges of a run: a restart after the end leaves the run's artefacts as they were; updates
still queued at the end are acked and audited, not left behind."""

from __future__ import annotations

import json

import pytest

from broker.connection import AmqpSession
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from fedmq.commands.audit import queue_contents
from harness.procs import Federation
from tests.e2e.test_poison import digits_update

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_a_restart_after_the_end_leaves_summary_and_final_model_as_they_were(
    federation: Federation,
) -> None:
    fed = federation
    agg = fed.aggregator("--max-versions", "5", num_partitions=1)
    fed.worker(0, num_partitions=1)
    assert agg.wait(timeout=90) == 0, fed.log("aggregator.log")[-3000:]
    summary = (fed.run_dir / "summary.json").read_text()
    model = (fed.run_dir / "final_model.npz").read_bytes()
    assert json.loads(summary)["accuracy"] is not None

    # As compose would after a SIGKILL just past the end: the same run, restarted.
    again = fed.aggregator("--max-versions", "5", num_partitions=1)

    assert again.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    assert (fed.run_dir / "summary.json").read_text() == summary
    assert (fed.run_dir / "final_model.npz").read_bytes() == model


def test_updates_still_queued_at_the_end_are_acked_and_audited_as_after_final(
    federation: Federation, amqp_url: str
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

    agg = fed.aggregator("--max-versions", "3", "--prefetch", "1", "--max-batch", "1")

    assert agg.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]
    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    after = [e for e in fed.audit() if e["event"] == "rejected" and e["reason"] == "after-final"]
    assert applied == ids[:3]
    assert [e["update_id"] for e in after] == ids[3:]
    assert all(not e["dead_lettered"] and e["worker_id"] == "w0" for e in after)
    assert queue_contents(settings) == ([], {})  # nothing left behind, nothing dead-lettered
