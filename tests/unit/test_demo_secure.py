"""``fedmq demo --secure-aggregation`` picks secure FedBuff's settings; flags still win."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from fedmq.commands import demo
from fedmq.commands.demo_secure import SECURE_MAX_VERSIONS, logins_for, management_client, provision
from runtime.cliargs import CliError

URL = ["--amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2F"]


def parsed(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.setup(parser)
    return parser.parse_args(argv)


def test_secure_demo_runs_fedbuff_with_strict_identity_and_all_but_one_worker_per_buffer() -> None:
    settings = demo._demo_settings(parsed(["--secure-aggregation", "--workers", "5"]), "ns-s")

    assert settings.secure_aggregation and settings.strategy == "fedbuff"
    assert settings.identity == "strict" and settings.identity_mode() == "strict"
    assert settings.buffer_size == 4 and settings.max_versions == SECURE_MAX_VERSIONS


def test_flags_given_with_secure_aggregation_are_kept() -> None:
    args = parsed(["--secure-aggregation", "--buffer-size", "2", "--max-versions", "7"])

    settings = demo._demo_settings(args, "ns-s")

    assert settings.buffer_size == 2 and settings.max_versions == 7


def test_every_process_logs_in_as_its_own_user_with_a_password_file_not_in_the_url(
    tmp_path: Path,
) -> None:
    settings = demo._demo_settings(
        parsed(["--secure-aggregation", "--workers", "2", "--run-dir", str(tmp_path), *URL]), "ns-s"
    )

    logins = logins_for(settings, 2)

    assert logins.vhost == "ns-s" and logins.workers == ("ns-s-w0", "ns-s-w1")
    url, password_file = logins.flags("ns-s-w1")[1], logins.flags("ns-s-w1")[3]
    assert url == "amqp://ns-s-w1@127.0.0.1:5672/ns-s"
    assert password_file == str(tmp_path / "secrets" / "ns-s-w1.pw")
    assert "--roster-file" in logins.aggregator_flags()


def test_without_a_management_api_nothing_is_created_and_the_refusal_says_what_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FEDMQ_MANAGEMENT_URL", f"http://127.0.0.1:{port}")
    argv = ["--secure-aggregation", "--workers", "2", "--run-dir", str(tmp_path), *URL]
    settings = demo._demo_settings(parsed(argv), "ns-s")
    logins = logins_for(settings, 2)

    with pytest.raises(CliError, match="management API.*FEDMQ_MANAGEMENT_URL"):
        provision(management_client(settings), logins, "ns-s")

    assert not logins.secrets.exists()
    assert "creating" not in capsys.readouterr().out
