"""Original quantization terms of the second-round methods (IDHN, LCDSH), as plug-ins.

Each class computes its method's *unweighted* term; the docstring names the tensor the method
applies it to and the weight λ it uses (configs carry the weight). ``sign`` follows hashbench's
convention sign(0) = +1.
"""

from __future__ import annotations

from torch import Tensor

from .base import Quantizer

__all__ = ["SoftsignUnitL1"]


class SoftsignUnitL1(Quantizer):
    """L1 distance of the softsign codes' magnitudes to 1: ``mean(|1 − |z||)``, ``z = u / (1 + |u|)`` (IDHN).

    Since ``|z| < 1`` this equals ``mean(1 / (1 + |u|))``. Original: IDHN applies it to the raw output
    u (its codes are softsign(u)) with λ = α = 0.1 (the authors' code).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (1 + x.abs()).reciprocal().mean()
