"""Numerical precision of the losses and quantizers: exact sums under bf16/fp16 mixed precision."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["compute_dtype", "no_autocast"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other float (fp16, bf16, fp32, fp8) is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@contextlib.contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device``'s type, so reductions and sorts run in the compute dtype."""
    ctx: contextlib.AbstractContextManager[object]
    try:
        ctx = torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):  # a device type autocast does not know: nothing to disable
        ctx = contextlib.nullcontext()
    with ctx:
        yield
