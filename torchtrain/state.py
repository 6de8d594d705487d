"""A module's ``state_dict`` as named numpy arrays and back: dtypes kept, buffers included.

Every entry of ``state_dict()`` travels: parameters and buffers (BatchNorm's
``running_mean``/``running_var`` and its int64 ``num_batches_tracked``), each
in its own dtype. Out is one copy per entry (the caller may keep the arrays
while the module trains on); in is one copy straight into the module's own
storage (no temporary tensor). Loading is strict: the names, shapes and
dtypes must be exactly the module's, or nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from training.weights import Weights

#: torch dtypes that have a numpy twin (and so can travel); bfloat16 and complex cannot.
NUMPY_DTYPES: dict[torch.dtype, np.dtype] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.int8: np.dtype(np.int8),
    torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32),
    torch.int64: np.dtype(np.int64),
    torch.uint8: np.dtype(np.uint8),
    torch.bool: np.dtype(np.bool_),
}


class StateMismatch(ValueError):
    """Weights that do not fit the module (names, shapes or dtypes): nothing was loaded."""


def _entries(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state tensors (detached views of its parameters and buffers)."""
    entries = dict(module.state_dict())
    for name, tensor in entries.items():
        if tensor.dtype not in NUMPY_DTYPES:
            raise StateMismatch(f"{name}: dtype {tensor.dtype} has no numpy equivalent")
        if tensor.device.type != "cpu":
            raise StateMismatch(f"{name}: on {tensor.device}; fedmq trains on the CPU")
    return entries


def module_weights(module: torch.nn.Module) -> Weights:
    """Every state entry as its own numpy array (one copy each), in the module's dtypes."""
    return {name: t.detach().numpy().copy() for name, t in _entries(module).items()}


def check_weights(module: torch.nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """``StateMismatch`` unless ``weights`` has exactly the module's names, shapes and dtypes."""
    entries = _entries(module)
    missing, unexpected = entries.keys() - weights.keys(), weights.keys() - entries.keys()
    if missing or unexpected:
        raise StateMismatch(f"missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    for name, tensor in entries.items():
        array = np.asarray(weights[name])
        if array.shape != tuple(tensor.shape):
            raise StateMismatch(f"{name}: shape {array.shape}, expected {tuple(tensor.shape)}")
        if array.dtype != NUMPY_DTYPES[tensor.dtype]:
            raise StateMismatch(f"{name}: dtype {array.dtype}, expected {tensor.dtype}")


def load_module_weights(module: torch.nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Write ``weights`` into the module's parameters and buffers (strict; one copy each)."""
    check_weights(module, weights)
    with torch.no_grad():
        for name, tensor in _entries(module).items():
            # The tensor's numpy view is its own storage: copying into it is the only copy, and the
            # source may be a read-only view of a message body (torch refuses to wrap those).
            np.copyto(tensor.numpy(), weights[name], casting="no")
