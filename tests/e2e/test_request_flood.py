"""A flood of model requests earns one model per worker per interval, not one per request.

Before the rate limit, 5,000 requests from one worker earned 1,565 full models
(the aggregator answered each worker once per answer round, and rounds come
every few milliseconds): an amplification of the requester's bandwidth by the
model's size.
"""

from __future__ import annotations

import time

import pytest

from aggregator.core.answers import MIN_ANSWER_INTERVAL
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.names import REQUEST_KEY, Names
from broker.properties import request_properties
from broker.settings import BrokerSettings
from broker.topology import declare_worker_queue
from harness.procs import Federation, pump_until, wait_for
from schemas.codec import encode
from schemas.messages import ModelRequest

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

FLOOD = 5000


def test_5000_requests_earn_a_model_per_interval(
    federation: Federation, broker_settings: BrokerSettings
) -> None:
    fed, names = federation, Names(federation.namespace)
    fed.aggregator("--max-seconds", "120", num_partitions=2)
    wait_for(lambda: fed.latest_version() >= 0, 60, "the aggregator's first version")
    flood: list[Delivery] = []
    probe: list[Delivery] = []
    with AmqpSession(broker_settings) as session:
        session.consume(declare_worker_queue(session, names, "flooder"), flood.append)
        session.consume(declare_worker_queue(session, names, "probe"), probe.append)
        started = time.monotonic()
        for _ in range(FLOOD):
            request = encode(ModelRequest(worker_id="flooder"))
            props = request_properties("flooder", session.username)
            session.publish(names.inbox_exchange, REQUEST_KEY, request, props)
        # The requests queue is FIFO: once the probe's answer is here, every flood request was read.
        request = encode(ModelRequest(worker_id="probe"))
        session.publish(
            names.inbox_exchange, REQUEST_KEY, request, request_properties("probe", "guest")
        )
        pump_until(session, lambda: probe, 60, "the probe's model")
        elapsed = time.monotonic() - started
        session.process_events(0.2)  # the last flood answer, published before the probe's

    print(f"\n{FLOOD} requests in {elapsed:.1f} s earned {len(flood)} models")
    assert 1 <= len(flood) <= 2 + elapsed / MIN_ANSWER_INTERVAL, (len(flood), elapsed)
