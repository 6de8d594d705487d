"""`fedmq conformance`: the built-in worker keeps every rule; a worker that does nothing fails."""

from __future__ import annotations

import sys

import pytest

from fedmq.cli import main

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_the_built_in_worker_keeps_every_rule(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["conformance", "--amqp-url", amqp_url, "--", sys.executable, "-m", "worker"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "BROKEN" not in out and "8 rules kept, 0 broken" in out


def test_a_worker_that_does_nothing_breaks_the_rules(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["conformance", "--amqp-url", amqp_url, "--max-seconds", "3"]

    code = main([*argv, "--", sys.executable, "-c", "pass"])

    out = capsys.readouterr().out
    assert code == 1
    assert "BROKEN  consumes its own model queue" in out
    assert "BROKEN  stops after the final model (section 7): exited with code 0 before" in out
    assert "0 rules kept, 8 broken" in out
