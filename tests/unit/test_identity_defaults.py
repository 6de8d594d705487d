"""Authenticated by default: strict identity unless connected as guest; defences that count one
vote per worker refuse to start with open identity."""

from __future__ import annotations

import pytest

from aggregator.core.identity import open_identity_refusal, resolve_identity
from aggregator.settings import AggregatorSettings
from fedmq.cli import main as fedmq

PROVISIONED = "amqp://fed-aggregator:pw@127.0.0.1:1/fed"
GUEST_UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/%2F"


@pytest.mark.parametrize(
    ("setting", "user", "mode"),
    [
        ("auto", "fed-aggregator", "strict"),
        ("auto", "guest", "open"),
        ("open", "fed-aggregator", "open"),
        ("strict", "guest", "strict"),
    ],
)
def test_identity_is_strict_for_every_provisioned_user(setting, user, mode) -> None:  # type: ignore[no-untyped-def]
    assert resolve_identity(setting, user) == mode


def test_a_provisioned_aggregator_is_strict_without_being_told() -> None:
    assert AggregatorSettings(amqp_url=PROVISIONED).identity_mode() == "strict"
    assert AggregatorSettings().identity_mode() == "open"  # guest: the laptop demo


def test_the_defences_that_count_workers_are_named_in_the_refusal() -> None:
    robust = AggregatorSettings(norm_bound=3.0, strategy="fedbuff", aggregation="median")
    private = AggregatorSettings(dp="central")

    refusal = open_identity_refusal("open", robust.identity_keyed_defences())

    assert refusal is not None and "--norm-bound, --aggregation median need(s)" in refusal
    assert private.identity_keyed_defences() == ["--dp central"]
    assert open_identity_refusal("strict", robust.identity_keyed_defences()) is None
    assert open_identity_refusal("open", AggregatorSettings().identity_keyed_defences()) is None


@pytest.mark.parametrize(
    "flags",
    [
        ["--dp", "central"],
        ["--norm-bound", "3"],
        ["--strategy", "fedbuff", "--aggregation", "median"],
        ["--strategy", "fedbuff", "--aggregation", "trimmed-mean", "--identity", "open"],
    ],
)
def test_the_aggregator_refuses_to_start_a_defence_with_open_identity(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = fedmq(["aggregator", "--amqp-url", GUEST_UNREACHABLE, "--connect-attempts", "1", *flags])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "identity is open" in err and "--identity strict" in err
