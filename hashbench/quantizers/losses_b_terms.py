"""Original quantization terms of the second-round methods (IDHN, LCDSH), as plug-ins.

Each class computes its method's *unweighted* term; the docstring names the tensor the method
applies it to and the weight λ it uses (configs carry the weight). ``sign`` follows hashbench's
convention sign(0) = +1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Quantizer, sign_pm1

__all__ = ["LocalityConstrained", "SoftsignUnitL1"]


class SoftsignUnitL1(Quantizer):
    """L1 distance of the softsign codes' magnitudes to 1: ``mean(|1 − |z||)``, ``z = u / (1 + |u|)`` (IDHN).

    Since ``|z| < 1`` this equals ``mean(1 / (1 + |u|))``. Original: IDHN applies it to the raw output
    u (its codes are softsign(u)) with λ = α = 0.1 (the authors' code).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (1 + x.abs()).reciprocal().mean()


class LocalityConstrained(Quantizer):
    """Locality-constrained quantization (LCDSH): ``mean_ij (σ(½ u_i·u_j) − σ(½ b_i·b_j))²``, ``b = sign u``.

    The pairwise similarity probability of the continuous codes should match that of their binary
    codes; pairs are those of the batch (N² including i = j), the sign is a constant. Original: LCDSH
    applies it to the raw output u with λ = 3 (DeepHash-pytorch's setting).
    """

    def loss(self, x: Tensor) -> Tensor:
        b = sign_pm1(x)
        return (torch.sigmoid(0.5 * x @ x.T) - torch.sigmoid(0.5 * b @ b.T)).pow(2).mean()
