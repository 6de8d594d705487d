"""A stage's messages reach each cohort member in a message it can decode, however large the cohort.

Broadcasting every member's payload to everyone made the shares-stage message of a 120-worker
complete graph (n = 1.2 K for K = 100) 1.08 MB of header, above the 1 MiB every worker's decoder
takes, so no worker could answer. A stage with payloads now goes to each member alone, with its
own entries only (O(k) bytes, not O(n k)).
"""

from __future__ import annotations

import pytest

from schemas.codec import decode, encode
from schemas.errors import DecodeError
from schemas.secure import SecureRound
from secagg.buffer import BufferSetup
from secagg.client import SecAggClient
from secagg.local import seeded_entropy
from secagg.messages import NeighbourKeys, ShareInbox
from secagg.server import SecAggServer
from secagg.wire import addressed_to, round_message, stage_messages

N = 120


def setup() -> BufferSetup:
    cohort = tuple(f"w{i:03d}" for i in range(N))
    return BufferSetup(
        buffer_id="b.1.0",
        cohort=cohort,
        dimension=10,
        degree=N - 1,
        threshold=61,
        clip=1.0,
        max_weight=1.0,
        min_contributors=100,
    )


def test_each_member_of_a_large_complete_graph_decodes_its_own_share_inbox() -> None:
    buffer = setup()
    server = SecAggServer(buffer)
    clients = {u: SecAggClient(buffer, u, entropy=seeded_entropy(0, u)) for u in buffer.cohort}
    for u, client in clients.items():
        server.receive(u, client.advertise_keys())
    requests = server.advance()
    assert isinstance(requests, tuple), requests
    for request in requests:
        assert isinstance(request, NeighbourKeys)
        server.receive(request.recipient, clients[request.recipient].share_keys(request))
    inboxes = server.advance()
    assert isinstance(inboxes, tuple), inboxes

    sent = stage_messages(buffer, run_id="r", version=0, stage="masked", messages=inboxes)

    everyone = round_message(buffer, run_id="r", version=0, stage="masked", messages=inboxes)
    with pytest.raises(DecodeError, match="header"):  # why: all inboxes at once are too large
        decode(encode(everyone), SecureRound)
    recipients = [r for r, _ in sent]
    assert sorted(r for r in recipients if r) == list(buffer.cohort)  # one message per member
    assert None not in recipients
    for recipient, message in sent:
        assert recipient is not None
        received = decode(encode(message), SecureRound)  # the worker's default limits
        inbox = addressed_to(received, recipient)
        assert isinstance(inbox, ShareInbox) and len(inbox.shares) == N - 1
        assert set(received.inboxes) == {recipient}  # nobody else's sealed shares


def test_the_keys_stage_is_one_broadcast_to_everyone() -> None:
    sent = stage_messages(setup(), run_id="r", version=0, stage="keys", messages=())

    assert [r for r, _ in sent] == [None]
    assert sent[0][1].cohort == setup().cohort
