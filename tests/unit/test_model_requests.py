"""Model requests: identity-checked and rate-limited per worker (5,000 requests once earned 1,565
full models)."""

from __future__ import annotations

from typing import Any

from aggregator.core.activity import ActiveWorkers
from aggregator.core.answers import AnswerLimiter
from aggregator.core.identity import IdentityPolicy, Roster
from aggregator.shell.requests import ModelRequests
from broker.delivery import Delivery
from broker.properties import request_properties
from schemas.codec import Limits, encode
from schemas.messages import ModelRequest

STRICT = IdentityPolicy("strict", Roster(frozenset({"alice", "bob"})))


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t


class Recorder:
    """Stands in for the session (acks) and the publisher (answers)."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.sent: list[str] = []

    def ack(self, tag: int, **_: Any) -> None:
        self.acked.append(tag)

    def send_to_worker(self, worker_id: str) -> None:
        self.sent.append(worker_id)


def request(tag: int, worker_id: str, user_id: str | None) -> Delivery:
    body = encode(ModelRequest(worker_id=worker_id))
    return Delivery(tag, False, "request", body, request_properties(worker_id, user_id))


def requests(policy: IdentityPolicy) -> tuple[ModelRequests, Recorder, FakeClock]:
    recorder, clock = Recorder(), FakeClock()
    handler = ModelRequests(
        recorder,  # type: ignore[arg-type]
        recorder,  # type: ignore[arg-type]
        active=ActiveWorkers(60.0),
        limits=Limits(),
        clock=clock,  # type: ignore[arg-type]
        identity=lambda: policy,
    )
    return handler, recorder, clock


def test_a_request_flood_earns_one_model_per_interval() -> None:
    handler, recorder, clock = requests(STRICT)

    for tag in range(5000):  # one answer round per request: the worst case for the old rule
        handler.receive(request(tag, "alice", "alice"))
        handler.answer()
        clock.t += 0.001  # 5,000 requests in 5 s
    assert recorder.sent == ["alice"] * 3  # at 100.0, 102.0 and 104.0
    assert len(recorder.acked) == 5000 and handler.limited == 4997


def test_requests_naming_another_worker_or_from_nobody_are_not_answered() -> None:
    handler, recorder, _ = requests(STRICT)

    for tag, (worker_id, user_id) in enumerate(
        [("bob", "alice"), ("alice", None), ("eve", "eve"), ("bob", "bob")]
    ):
        handler.receive(request(tag, worker_id, user_id))
    handler.answer()

    assert recorder.sent == ["bob"]
    assert handler.refused == 3 and recorder.acked == [0, 1, 2, 3]
    assert handler.active.active(100.0) == frozenset({"bob"})


def test_the_limiter_forgets_answers_older_than_its_interval() -> None:
    limiter = AnswerLimiter(2.0)

    assert limiter.allow("a", 0.0) and not limiter.allow("a", 1.9) and limiter.allow("b", 1.9)
    assert limiter.allow("a", 2.0) and len(limiter) == 2
    assert limiter.allow("c", 10.0) and len(limiter) == 1
