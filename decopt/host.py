"""NumPy views of tensors in host memory, for the NumPy fast paths that run only where the state
lives on the CPU (top-k selection, fused steps). Everywhere else the step loop keeps its values on
the tensors' device and reads them at evaluations (tests/test_host_sync.py guards it; this is the
one door it leaves open, since a CPU tensor's view copies nothing)."""
from __future__ import annotations

import numpy as np

from .lazy import torch


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """The NumPy array sharing ``t``'s memory (a CPU tensor; ValueError on another device)."""
    if t.device.type != "cpu":
        raise ValueError(f"numpy_view: a {t.device} tensor is not in host memory")
    return torch._C.TensorBase.numpy(t)     # the C method: tests/test_host_sync.py guards torch.Tensor's
