"""The original quantization terms of the methods in docs/methods.md (section 3), as plug-ins.

Each class computes exactly its method's *unweighted* term, so a similarity loss can return it as its
``"quantization"`` term and any other loss can use it through ``model.quantizer``. The docstring of
each class gives the formula in one line, the tensor the method applies it to, and the weight λ the
method uses by default (configs cite it; no weight lives in code). Elementwise terms are means over
all N·m entries, so they are defined for any N ≥ 1 and m ≥ 1. ``sign`` follows hashbench's
convention sign(0) = +1.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from hashbench.codes import cosine_to_sign, sign_pm1

from .base import Quantizer

__all__ = [
    "BitBalance",
    "Cauchy",
    "CosineToSign",
    "Cubic",
    "LogCosh",
    "SignL2",
    "TanhSquared",
    "UnitL1",
]


class SignL2(Quantizer):
    """Squared distance to the sign: ``mean((u − sign u)²)`` over all entries (DPSH, DTSH).

    Original: DPSH applies it to the raw output u with λ = α = 0.1; DTSH with λ = 1 (docs/methods.md §3.0).
    The sign is a constant (its gradient is zero), so the gradient is 2(u − sign u)/(N·m).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (x - sign_pm1(x)).pow(2).mean()


class UnitL1(Quantizer):
    """L1 distance of the magnitudes to 1: ``mean(|1 − |u||)`` (DSH).

    Original: DSH applies it to the raw (unactivated) output u with λ = α = 0.1 (docs/methods.md §3.0).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (x.abs() - 1).abs().mean()


class Cubic(Quantizer):
    """Cubic distance of the magnitudes to 1: ``mean(||u| − 1|³)`` (GreedyHash).

    Original: GreedyHash applies it to the pre-sign output u with λ = α = 0.1 (docs/methods.md §3.0).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (x.abs() - 1).abs().pow(3).mean()


class Cauchy(Quantizer):
    """Cauchy quantization: ``mean_i log(1 + d(|u_i|, 𝟙)/γ)``, ``d(a, b) = (m/2)(1 − cos(a, b))`` (DCH).

    d is DCH's normalised Hamming-distance surrogate for m bits (m = the number of columns), so the
    term is in [0, log(1 + m/(2γ))]. Original: DCH applies it to its continuous codes u with
    λ = 0.1 and γ = 20 (docs/methods.md §3.0). At m = 1 every nonzero code has cos = 1, so the term is 0.
    A zero row counts as cos = 0 (d = m/2).

    Args:
        gamma: Cauchy scale γ (> 0); DCH's default 20.
    """

    def __init__(self, gamma: float = 20.0) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"Cauchy needs gamma > 0, got {gamma}")
        self.gamma = float(gamma)

    def loss(self, x: Tensor) -> Tensor:
        d = 0.5 * x.shape[1] * (1 - cosine_to_sign(x))
        return torch.log1p(d / self.gamma).mean()

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class TanhSquared(Quantizer):
    """Squared distance of |tanh u| to 1: ``mean((|tanh u| − 1)²)`` (CSQ).

    Original: CSQ applies it to the raw output u (the tanh is part of the term) with λ = 1e-4
    (docs/methods.md §3.0). Feed it u: on an already tanh-activated h use ``apply_tanh=False``, which gives
    ``mean((|h| − 1)²)`` (the same number CSQ computes from u).

    Args:
        apply_tanh: apply tanh to the input first (CSQ on raw u); False for codes already in [−1, 1].
    """

    def __init__(self, apply_tanh: bool = True) -> None:
        super().__init__()
        self.apply_tanh = bool(apply_tanh)

    def loss(self, x: Tensor) -> Tensor:
        t = torch.tanh(x) if self.apply_tanh else x
        return (t.abs() - 1).pow(2).mean()

    def extra_repr(self) -> str:
        return f"apply_tanh={self.apply_tanh}"


class BitBalance(Quantizer):
    """Bit balance: ``mean_i |mean_k u_ik|^p`` (DBDH, as commonly implemented: p = 2, per code).

    Original: DBDH applies it to its clamped output u ∈ [−1, 1] with λ = α = 0.1 (docs/methods.md §3.0).
    ``over="code"`` (default, the common implementation) balances the bits *within each code*
    (row means); it needs m ≥ 2, since with one bit it would only pull u to 0. ``over="batch"``
    balances each bit *over the batch* (column means, each bit half −1, half +1); it needs N ≥ 2.
    Neither form pulls towards ±1 on its own.

    Args:
        p: exponent, 2 (squared mean, the default) or 1 (absolute mean; DeepHash-pytorch ``p=1``).
        over: ``"code"`` (mean over bits of each code, DBDH) or ``"batch"`` (mean over the batch per bit).
    """

    def __init__(self, p: Literal[1, 2] = 2, over: Literal["code", "batch"] = "code") -> None:
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f"BitBalance p must be 1 or 2, got {p!r}")
        if over not in ("code", "batch"):
            raise ValueError(f"BitBalance over must be 'code' or 'batch', got {over!r}")
        self.p = int(p)
        self.over = over
        # a mean over a single element cannot be balanced: require two of them
        self.min_bits = 2 if over == "code" else 1
        self.min_batch = 2 if over == "batch" else 1

    def loss(self, x: Tensor) -> Tensor:
        means = x.mean(dim=1) if self.over == "code" else x.mean(dim=0)
        return means.abs().pow(self.p).mean()

    def extra_repr(self) -> str:
        return f"p={self.p}, over={self.over!r}"


class LogCosh(Quantizer):
    """Smooth L1 of the magnitudes to 1: ``mean(log cosh(|u| − 1))`` (DHN, IDHN).

    Not a term of the methods of docs/methods.md §3 (DHN is §4.1); DHN (Zhu et al., AAAI 2016) applies
    it to its raw output u, and the common implementation (DeepHash-pytorch's DHN) uses λ = α = 0.1.
    Computed stably as ``|z| + log1p(exp(−2|z|)) − log 2``.
    """

    def loss(self, x: Tensor) -> Tensor:
        z = (x.abs() - 1).abs()
        return (z + torch.log1p(torch.exp(-2 * z)) - math.log(2.0)).mean()


class CosineToSign(Quantizer):
    """Cosine distance to the binary code: ``mean_i (1 − cos(h_i, sign h_i))`` (OrthoHash option).

    Original: OrthoHash's optional ``quan-type cs`` term on its BN-normalised continuous codes; it
    is off by default there (λ = ``--quan`` = 0), so a config that enables it must choose λ.
    Scale-free: only the directions of the codes matter. At m = 1 it is 0 for every nonzero code;
    a zero code counts as cos = 0 (term 1).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (1 - cosine_to_sign(x)).mean()
