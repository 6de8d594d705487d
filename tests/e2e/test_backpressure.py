"""Backpressure: a stalled aggregator leaves a bounded results queue, refused workers keep their
update, nothing is lost.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from broker.connection import AmqpSession
from broker.names import Names
from broker.settings import BrokerSettings
from fedmq.audit import RunEvidence, check_run, confirmed_ids
from harness.procs import Federation, wait_for
from tests.e2e.test_pipeline import queued_ids

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

MAX_LENGTH = 3
WORKERS = ["w0", "w1"]
#: A quorum queue refuses publishes only once it is *over* its limit, and a publisher learns of
#: that after its publish in flight was taken: the queue can hold one more per concurrent publisher
#: (RabbitMQ 3.10, measured with confirmed publishers: 1 → limit + 1, 2 → + 2, 8 → up to + 8).
QUEUE_BOUND = MAX_LENGTH + len(WORKERS)


def refused_since(fed: Federation, since: float) -> set[str]:
    """Workers refused by the broker after ``since``."""
    return {
        w
        for w in WORKERS
        for e in fed.worker_events(w)
        if e["event"] == "publish-refused" and e["time"] > since
    }


def kept_until_confirmed(events: list[dict[str, Any]], update_id: str) -> bool:
    """After its first refusal the worker trained nothing new before ``update_id`` was confirmed."""
    kinds = [(e["event"], e.get("update_id")) for e in events]
    refused = kinds.index(("publish-refused", update_id))
    confirmed = kinds.index(("confirmed", update_id))
    return refused < confirmed and all(kind != "training" for kind, _ in kinds[refused:confirmed])


def test_a_full_results_queue_makes_workers_back_off_and_keep_their_updates(
    federation: Federation, amqp_url: str
) -> None:
    fed = federation
    bound = ["--results-max-length", str(MAX_LENGTH)]
    agg = fed.aggregator("--max-versions", "80", "--prefetch", "2", *bound, num_partitions=2)
    for i, _ in enumerate(WORKERS):
        fed.worker(i, *bound, num_partitions=2)
    wait_for(lambda: fed.latest_version() >= 10, 60, "version 10")
    # A worker that attached late (a loaded machine) may still wait for its first model, which a
    # stalled aggregator never sends: stall only once every worker has had an update confirmed.
    wait_for(
        lambda: all(confirmed_ids(fed.worker_events(w)) for w in WORKERS),
        60,
        "an update confirmed from every worker",
    )
    depths: list[int] = []
    settings = BrokerSettings(amqp_url=amqp_url, namespace=fed.namespace)

    stalled = time.time()
    agg.send_signal(signal.SIGSTOP)  # stalled: connected, consuming nothing
    try:
        with AmqpSession(settings) as session:

            def refused_while_sampling() -> bool:
                depths.append(session.queue_counts(Names(fed.namespace).results_queue)[0])
                return len(refused_since(fed, stalled)) == len(WORKERS)

            try:
                wait_for(refused_while_sampling, 30, "every worker to be refused by the full queue")
            except AssertionError as exc:  # say what each worker was doing meanwhile
                tails = {w: fed.log(f"{w}.log")[-1500:] for w in WORKERS}
                raise AssertionError(f"{exc}; depths {depths[-20:]}; logs {tails}") from exc
    finally:
        agg.send_signal(signal.SIGCONT)
    assert agg.wait(timeout=120) == 0, fed.log("aggregator.log")[-3000:]
    wait_for(
        lambda: all(p.poll() is not None for p in fed.procs),
        30,
        "the workers to stop on the final model",
    )

    assert max(depths) <= QUEUE_BOUND and depths[-1] >= MAX_LENGTH, depths
    for worker in WORKERS:
        events = fed.worker_events(worker)
        first_refused = next(
            e["update_id"]
            for e in events
            if e["event"] == "publish-refused" and e["time"] > stalled
        )
        assert kept_until_confirmed(events, first_refused), worker
    confirmed = [u for w in WORKERS for u in confirmed_ids(fed.worker_events(w))]
    report = check_run(
        RunEvidence(fed.audit(), confirmed, queued=queued_ids(amqp_url, fed.namespace))
    )
    assert report.ok, report.lines()
