"""Sender identity: the broker-validated user_id decides, in strict mode only."""

from __future__ import annotations

import pytest

from aggregator.core.identity import IdentityPolicy, Roster, check_claim, check_sender
from aggregator.shell.roster import RosterFile

STRICT = IdentityPolicy("strict", Roster(frozenset({"alice", "bob"}), frozenset({"mallory"})))


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        (None, "no-user-id"),
        ("", "no-user-id"),
        ("mallory", "revoked-worker"),
        ("eve", "unknown-worker"),
    ],
)
def test_strict_mode_refuses_senders_it_cannot_vouch_for(user_id: str | None, reason: str) -> None:
    refused = check_sender(STRICT, user_id)

    assert refused is not None and refused.reason == reason


def test_strict_mode_admits_an_active_worker() -> None:
    assert check_sender(STRICT, "alice") is None


def test_strict_mode_without_a_roster_admits_any_authenticated_user() -> None:
    assert check_sender(IdentityPolicy("strict"), "carol") is None
    assert check_sender(IdentityPolicy("strict"), None) is not None


def test_a_worker_cannot_claim_another_workers_id() -> None:
    refused = check_claim(STRICT, "alice", "bob")

    assert refused is not None and refused.reason == "identity-mismatch"
    assert check_claim(STRICT, "alice", "alice") is None


def test_open_mode_checks_nothing() -> None:
    open_policy = IdentityPolicy("open", STRICT.roster)

    assert check_sender(open_policy, None) is None
    assert check_claim(open_policy, "guest", "w0") is None


def test_revoking_and_readmitting_a_worker() -> None:
    roster = Roster().with_worker("w1").with_worker("w2").without_worker("w1")

    assert (roster.status("w1"), roster.status("w2"), roster.status("w3")) == (
        "revoked",
        "active",
        "unknown",
    )
    assert roster.with_worker("w1").status("w1") == "active"


@pytest.mark.parametrize(
    "text", ["[]", '{"active": "w1"}', '{"active": [1]}', '{"admins": []}', "not json"]
)
def test_a_malformed_roster_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        Roster.from_json(text)


def test_the_roster_file_round_trips_and_reports_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    file = RosterFile(tmp_path / "roster.json")
    assert file.load() == Roster()
    file.update(lambda r: r.with_worker("w1"))
    assert file.reload_if_changed() == Roster(frozenset({"w1"}))
    assert file.reload_if_changed() is None

    file.update(lambda r: r.without_worker("w1"))

    assert file.reload_if_changed() == Roster(frozenset(), frozenset({"w1"}))


def test_the_core_refuses_an_impersonated_update_and_counts_it() -> None:
    import numpy as np

    from aggregator.core.aggregator import Aggregator, Applied
    from aggregator.core.fedasync import FedAsync
    from aggregator.core.state import AggregatorState, AppliedWindow
    from aggregator.core.validation import Rejected
    from schemas.messages import ClientUpdate

    weights = {"w": np.zeros(2, np.float32)}
    core = Aggregator(
        AggregatorState("r", 0, weights, AppliedWindow(10)),
        FedAsync(),
        max_staleness=None,
        identity=STRICT,
    )
    update = ClientUpdate(
        update_id="update-0001",
        worker_id="bob",
        base_version=0,
        num_examples=1,
        update_kind="weights",
        train_seconds=0.0,
        arrays={"w": np.ones(2, np.float32)},
    )

    forged = core.handle(update, sender="alice")
    genuine = core.handle(update, sender="bob")

    assert isinstance(forged, Rejected) and forged.reason == "identity-mismatch"
    assert isinstance(genuine, Applied)
    assert core.state.counters.rejected == {"identity-mismatch": 1}
