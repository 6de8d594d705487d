"""Secrets come from files or the environment, never from flags or images."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.management import ManagementSettings
from broker.parameters import connection_parameters
from broker.settings import BrokerSettings


def test_the_broker_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "alice.pw"
    secret.write_text("s3cret\n")

    params = connection_parameters(
        BrokerSettings(amqp_url="amqps://alice@localhost:5671/fed1", amqp_password_file=str(secret))
    )

    assert (params.credentials.username, params.credentials.password) == ("alice", "s3cret")
    assert params.virtual_host == "fed1" and params.ssl_options is not None


def test_a_password_in_the_url_is_used_when_there_is_no_file() -> None:
    params = connection_parameters(BrokerSettings(amqp_url="amqp://bob:pw@localhost:5672/%2F"))

    assert (params.credentials.username, params.credentials.password) == ("bob", "pw")


def test_the_management_password_prefers_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "admin.pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("FEDMQ_MANAGEMENT_PASSWORD", "from-env")

    assert ManagementSettings().password() == "from-env"
    assert ManagementSettings(management_password_file=str(secret)).password() == "from-file"


def test_a_missing_management_password_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDMQ_MANAGEMENT_PASSWORD", raising=False)

    with pytest.raises(ValueError, match="FEDMQ_MANAGEMENT_PASSWORD"):
        ManagementSettings().password()
