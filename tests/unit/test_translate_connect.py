"""A connect that a frozen cluster member never answers is an outage, not a crash."""

from __future__ import annotations

import pytest
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorStackTimeout,
)

from broker.errors import ConnectionLost
from broker.translate import translated


@pytest.mark.parametrize(
    "raised",
    [
        AMQPConnectorStackTimeout("Timeout during AMQP handshake"),
        AMQPConnectionWorkflowFailed([AMQPConnectorStackTimeout("handshake")]),
    ],
)
def test_a_handshake_timeout_is_a_lost_connection(raised: Exception) -> None:
    with pytest.raises(ConnectionLost, match="connect"), translated("connect"):
        raise raised
