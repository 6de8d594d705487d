"""The command line: bad flags and settings are one line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fedmq.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    try:
        code: object = main(argv)
    except SystemExit as exc:  # argparse's own errors exit
        code = exc.code
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["aggregator", "--alpha", "3"], "--alpha"),
        (["aggregator", "--strategy", "fedsgd"], "invalid choice"),
        (["worker", "--worker-id", "bad id!"], "--worker-id"),
        (["worker", "--partition-index", "9", "--num-partitions", "4"], "partition_index"),
        (["worker", "--no-such-flag"], "unrecognized arguments"),
        (["aggregator", "--amqp-url", "http://x"], "amqp"),
    ],
)
def test_bad_flags_give_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(argv, capsys)

    assert code == 2
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_unreachable_broker_is_one_line_saying_where_and_how() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedmq",
            "status",
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2F",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = result.stderr.strip()
    assert result.returncode == 1
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in err
    assert "rabbitmq-server" in err and "\n" not in err and "Traceback" not in err


def test_the_configuration_reference_is_current() -> None:
    from fedmq.configdoc import DOC_PATH, render

    assert DOC_PATH.read_text() == render(), (
        "run `python -m fedmq.configdoc` to regenerate docs/configuration.md"
    )
