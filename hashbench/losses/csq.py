"""CSQ (Yuan et al., CVPR 2020): central similarity — pull each code to its class's hash centre."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.centers import CenterLoss
from hashbench.quantizers import TanhSquared


class CSQ(CenterLoss):
    """``BCE(½(tanh u + 1), ½(c + 1))`` per bit, mean over bits and samples, c the sample's hash centre.

    Computed from the raw output u in the stable logits form (``½(tanh u + 1) = sigmoid(2u)``), so
    the head may be ``tanh`` or ``identity`` (codes are sign(u) either way). Centres (C, m): rows of
    ``[H; −H]`` (Hadamard) when m is a power of 2 and C ≤ 2m, else well-separated random balanced
    rows (:func:`~hashbench.losses.centers.hash_centers`; any m ≥ 1, e.g. 12, 24, 48). Multi-label:
    the centre of a sample is the sign of the sum of its classes' centres, zeros set from a fixed
    random ±1 vector (:class:`~hashbench.losses.centers.CenterLoss`).

    Terms: ``similarity`` and ``quantization`` = :class:`TanhSquared` on u,
    ``mean((|tanh u| − 1)²)`` (λ = 1e-4 goes in ``quantization_weight``).

    Args:
        seed: seed of the random centres and of the multi-label tie-breaker.
    """

    center_method = "hadamard"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.original_quantization = TanhSquared()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        targets = self.targets(labels, u.dtype)
        similarity = F.binary_cross_entropy_with_logits(2 * u, 0.5 * (targets + 1))
        return {"similarity": similarity, "quantization": self.original_quantization(u)}
