"""Code-quality diagnostics: quantization error, bit balance/entropy, bit correlation, code usage."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashbench import codes
from hashbench.metrics.packing import as_packed, as_pm1

__all__ = [
    "bit_balance",
    "bit_correlation",
    "bit_entropy",
    "code_usage",
    "entropy_of_balance",
    "quantization_angles",
    "quantization_error",
]


def quantization_angles(h: Tensor) -> Tensor:
    """Per-row angle (radians, float32) between continuous ``h`` ``(N, m)`` and ``sign(h)`` (sign(0) = +1);
    π/2 for an all-zero row (:func:`hashbench.codes.quantization_angles` in float32)."""
    if h.dim() != 2:
        raise ValueError(f"h must be 2-D (N, bits), got shape {tuple(h.shape)}")
    return codes.quantization_angles(h.float())


def quantization_error(h: Tensor, bits: int | None = None) -> Tensor:
    """Mean angle in radians between each continuous code ``h`` and ``sign(h)``.

    Packed (uint8) codes are already binary: their error is 0.
    """
    if h.dtype == torch.uint8:
        as_packed(h, bits)  # validates
        return torch.zeros((), dtype=torch.float32, device=h.device)
    if bits is not None and h.shape[-1] != bits:
        raise ValueError(f"codes have {h.shape[-1]} columns but bits={bits}")
    return quantization_angles(h).mean()


def bit_balance(codes: Tensor, bits: int | None = None) -> Tensor:
    """Fraction of +1 of each bit over the items, shape ``(m,)`` float32."""
    b, _ = as_pm1(codes, bits)
    return (b > 0).float().mean(0)


def bit_entropy(codes: Tensor, bits: int | None = None) -> Tensor:
    """Mean over bits of the binary entropy (base 2) of each bit's +1 rate; 1.0 = perfectly balanced."""
    return entropy_of_balance(bit_balance(codes, bits))


def entropy_of_balance(balance: Tensor) -> Tensor:
    """:func:`bit_entropy` from the per-bit +1 rates ``(m,)`` of :func:`bit_balance`."""
    p = balance.double()
    ent = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)) / math.log(2)
    return ent.mean().float()


def bit_correlation(codes: Tensor, bits: int | None = None) -> Tensor:
    """Mean absolute Pearson correlation between distinct bits (off-diagonal), over the items.

    A constant bit has no defined correlation; its pairs count as 0. One bit: 0.
    """
    b, m = as_pm1(codes, bits, dtype=torch.float64)
    if m < 2:
        return torch.zeros((), dtype=torch.float32, device=b.device)
    x = b - b.mean(0, keepdim=True)
    cov = x.t() @ x
    std = cov.diagonal().sqrt()
    denom = std[:, None] * std[None, :]
    corr = torch.where(denom > 0, cov / denom.clamp(min=1e-300), 0.0)
    off = ~torch.eye(m, dtype=torch.bool, device=b.device)
    return corr.abs()[off].mean().float()


def code_usage(codes: Tensor, bits: int | None = None) -> Tensor:
    """Number of distinct binary codes divided by the number of items."""
    packed, _ = as_packed(codes, bits)
    n = packed.shape[0]
    if n == 0:
        raise ValueError("code_usage needs at least one code")
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = torch.nn.functional.pad(packed, (0, pad))
    words = packed.contiguous().view(torch.int64)  # (N, ceil(bytes/8)) 64-bit words
    if words.shape[1] == 1:
        distinct = torch.unique(words[:, 0]).numel()
    else:
        distinct = torch.unique(words, dim=0).shape[0]
    return torch.tensor(distinct / n, dtype=torch.float32, device=packed.device)
