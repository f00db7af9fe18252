"""Binary codes from continuous ones: hashbench's sign convention and the angle to the binary code.

The lowest layer of the library: the losses, the quantizers and the metrics import from here,
never the reverse.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["cosine_to_sign", "quantization_angles", "sign_pm1", "sign_straight_through"]


def sign_pm1(x: Tensor) -> Tensor:
    """sign with sign(0) = +1 (hashbench's convention for binary codes); values in {-1, +1}, x's dtype."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def cosine_to_sign(x: Tensor) -> Tensor:
    """Per-row cos(x_i, sign x_i) = ‖x_i‖₁ / (‖x_i‖₂ √m), in x's dtype; (N, m) → (N,).

    Equal to cos(|x_i|, 𝟙). A zero row has no direction: its cosine is taken as 0.
    """
    if x.dim() != 2:
        raise ValueError(f"codes must be 2-D (N, bits), got shape {tuple(x.shape)}")
    norm = torch.linalg.vector_norm(x, dim=1).clamp_min(torch.finfo(x.dtype).tiny)
    return x.abs().sum(dim=1) / (norm * math.sqrt(x.shape[1]))


def quantization_angles(x: Tensor) -> Tensor:
    """Per-row angle in radians between ``x`` and ``sign(x)``, in x's dtype; (N, m) → (N,).

    ``arccos`` of :func:`cosine_to_sign`: 0 for a binary code, π/2 for a zero row.
    """
    return torch.arccos(cosine_to_sign(x).clamp(-1.0, 1.0))


class _SignStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return sign_pm1(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def sign_straight_through(x: Tensor) -> Tensor:
    """:func:`sign_pm1` forward, identity gradient backward (GreedyHash's hash layer)."""
    return _SignStraightThrough.apply(x)
