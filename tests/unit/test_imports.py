"""Heavy libraries load only when used: the aggregator's memory floor depends on it."""

from __future__ import annotations

import subprocess
import sys


def test_the_services_do_not_import_scipy_sklearn_or_dp_accounting_until_needed() -> None:
    code = (
        "import sys, aggregator.shell.service, worker.service, aggregator.shell.main, worker.main;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'sklearn', "
        "'dp_accounting', 'matplotlib'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout

    assert out.strip() == "[]"
