"""Heavy libraries load only when used: the aggregator's and the torch worker's memory need it."""

from __future__ import annotations

import json
import subprocess
import sys


def top_level_modules_loaded(code: str, watched: set[str]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after running ``code``."""
    found = f"sorted({{m.split('.')[0] for m in sys.modules}} & {watched!r})"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({found}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    return list(json.loads(out))


def test_the_services_do_not_import_scipy_sklearn_or_dp_accounting_until_needed() -> None:
    code = "import aggregator.shell.service, worker.service, aggregator.shell.main, worker.main"

    loaded = top_level_modules_loaded(code, {"scipy", "sklearn", "dp_accounting", "matplotlib"})

    assert loaded == []


def test_a_plain_torch_worker_loads_neither_opacus_nor_cryptography() -> None:
    # Prepare: a worker's modules, the torch task and one fit without DP-SGD or secure aggregation
    code = (
        "import torch, worker.service, worker.main, torchtrain.mnist1d\n"
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "from schemas.messages import TrainConfig\n"
        "from torchtrain.trainer import TorchTrainer\n"
        "data = DataLoader(TensorDataset(torch.zeros(8, 40), torch.zeros(8, dtype=torch.long)))\n"
        "trainer = TorchTrainer(torchtrain.mnist1d.Cnn1d(4), data, data)\n"
        "trainer.fit(trainer.initial_weights(), TrainConfig(learning_rate=0.1))"
    )

    # Execute
    loaded = top_level_modules_loaded(code, {"opacus", "cryptography", "scipy", "dp_accounting"})

    # Assert: DP-SGD (Opacus, scipy) and secure aggregation (cryptography) load only when used
    assert loaded == []
