"""A broker address list: parsing, checking, and the order a client fails over in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.addresses import after_loss, rotation, split_urls
from broker.parameters import connection_parameters
from broker.settings import BrokerSettings, mask_url

A = "amqp://u:p@127.0.0.1:5001/fed"
B = "amqp://u:p@127.0.0.1:5002/fed"
C = "amqp://u:p@127.0.0.1:5003/fed"


def test_a_single_url_is_a_list_of_one() -> None:
    assert split_urls(A) == (A,)


def test_a_comma_separated_list_keeps_its_order_and_drops_spaces() -> None:
    assert split_urls(f"{B}, {A} ,{C}") == (B, A, C)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"{A},,{B}", "empty entry"),
        (f"{A},", "empty entry"),
        (f"{A},http://u:p@h/fed", "amqp:// or amqps://"),
        (f"{A},amqp://other:p@127.0.0.1:5002/fed", "same user and vhost"),
        (f"{A},amqp://u:p@127.0.0.1:5002/other", "same user and vhost"),
    ],
)
def test_a_bad_list_is_refused_with_its_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        split_urls(value)


def test_settings_refuse_a_bad_list_in_one_line() -> None:
    with pytest.raises(ValidationError, match="same user and vhost"):
        BrokerSettings(amqp_url=f"{A},amqp://x:p@127.0.0.1:5002/fed")


def test_settings_expose_every_address_and_the_first() -> None:
    settings = BrokerSettings(amqp_url=f"{A},{B}")

    assert settings.amqp_urls == (A, B) and settings.primary_url == A


def test_every_password_of_a_list_is_masked() -> None:
    assert mask_url(f"{A},{B}") == (
        "amqp://u:***@127.0.0.1:5001/fed,amqp://u:***@127.0.0.1:5002/fed"
    )


def test_each_address_gets_its_own_host_and_port() -> None:
    settings = BrokerSettings(amqp_url=f"{A},{B}")

    params = [connection_parameters(settings, url) for url in settings.amqp_urls]

    assert [(p.host, p.port, p.virtual_host) for p in params] == [
        ("127.0.0.1", 5001, "fed"),
        ("127.0.0.1", 5002, "fed"),
    ]


def test_rotation_tries_every_address_once_from_the_start() -> None:
    assert rotation(3, 0) == [0, 1, 2]
    assert rotation(3, 2) == [2, 0, 1]
    assert rotation(1, 0) == [0]


def test_rotation_of_no_addresses_is_an_error() -> None:
    with pytest.raises(ValueError):
        rotation(0, 0)


def test_after_losing_a_member_the_next_connect_starts_past_it() -> None:
    assert after_loss(3, current=1, planned=1) == 2
    assert after_loss(3, current=2, planned=2) == 0
    assert after_loss(1, current=0, planned=0) == 0


def test_a_failed_pass_leaves_the_starting_point_alone() -> None:
    assert after_loss(3, current=None, planned=2) == 2
