"""state_dict <-> named arrays: every entry (buffers too) in its own dtype, strict, one copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from schemas.codec import decode, encode
from schemas.messages import ClientUpdate
from torchtrain.state import StateMismatch, load_module_weights, module_weights


class WithBuffers(torch.nn.Module):
    """Float32 and float64 parameters, BatchNorm statistics, a float16 and a bool buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 3, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.head = torch.nn.Linear(3, 2).double()
        self.register_buffer("scale", torch.ones(2, dtype=torch.float16))
        self.register_buffer("mask", torch.tensor([True, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x)).mean(dim=2)
        out: torch.Tensor = self.head(h.double()).float()
        return out


def trained_module(seed: int) -> WithBuffers:
    torch.manual_seed(seed)
    module = WithBuffers()
    module(torch.randn(4, 1, 8))  # training mode: moves the running statistics and the counter
    return module


def test_every_state_entry_travels_in_its_own_dtype() -> None:
    module = trained_module(0)

    weights = module_weights(module)

    assert list(weights) == list(module.state_dict())
    assert weights["bn.num_batches_tracked"].dtype == np.int64
    assert int(weights["bn.num_batches_tracked"]) == 1
    assert weights["bn.running_var"].dtype == np.float32
    assert weights["head.weight"].dtype == np.float64
    assert weights["scale"].dtype == np.float16
    assert weights["mask"].dtype == np.bool_


def test_a_round_trip_through_the_wire_restores_the_state_exactly() -> None:
    source, target = trained_module(0), trained_module(1)
    update = ClientUpdate(
        update_id="u-00000001", worker_id="w", base_version=0, num_examples=1,
        update_kind="weights", train_seconds=0.0, arrays=module_weights(source),
    )  # fmt: skip

    # decode() gives read-only views of the body: loading must copy from them without complaint.
    load_module_weights(target, decode(encode(update), ClientUpdate).arrays)

    for name, tensor in source.state_dict().items():
        loaded = target.state_dict()[name]
        assert loaded.dtype == tensor.dtype, name
        assert torch.equal(loaded, tensor), name


def test_exported_arrays_are_copies_and_loading_copies_in() -> None:
    module = trained_module(0)
    weights = module_weights(module)
    before = weights["conv.weight"].copy()

    with torch.no_grad():
        module.conv.weight.add_(1.0)
    assert np.array_equal(weights["conv.weight"], before)

    load_module_weights(module, weights)
    weights["conv.weight"] += 5.0
    assert np.array_equal(module.conv.weight.detach().numpy(), before)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda w: w.pop("bn.num_batches_tracked"),
        lambda w: w.update(extra=np.zeros(1, np.float32)),
        lambda w: w.update({"conv.weight": np.zeros((3, 1, 4), np.float32)}),
        lambda w: w.update({"bn.num_batches_tracked": np.array(1, np.int32)}),
        lambda w: w.update({"conv.weight": w["conv.weight"].astype(np.float64)}),
    ],
    ids=["missing", "unexpected", "shape", "int-dtype", "float-dtype"],
)
def test_loading_is_strict_and_writes_nothing_when_it_refuses(spoil: object) -> None:
    module = trained_module(0)
    weights = {name: np.zeros_like(a) for name, a in module_weights(module).items()}
    spoil(weights)  # type: ignore[operator]
    before = {k: v.clone() for k, v in module.state_dict().items()}

    with pytest.raises(StateMismatch):
        load_module_weights(module, weights)

    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())


def test_a_dtype_without_a_numpy_twin_is_refused() -> None:
    module = torch.nn.Linear(2, 2).to(torch.bfloat16)

    with pytest.raises(StateMismatch, match="bfloat16"):
        module_weights(module)
