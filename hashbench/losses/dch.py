"""DCH (Cao et al., CVPR 2018): Cauchy cross-entropy on a normalised Hamming-distance surrogate."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, balance_weights, similarity_matrix
from hashbench.quantizers import Cauchy


class DCH(PairwiseLoss):
    """``d_ij = (m/2)(1 − cos(h_i, h_j))``; per pair ``s·log(d/γ) + log(1 + γ/d)``, weighted like HashNet.

    In the stable form: ``s·log(1 + d/γ) + (1 − s)·log(1 + γ/d)`` (equal, since
    ``log(d/γ) + log(1 + γ/d) = log(1 + d/γ)``). As DeepHash-pytorch, cos is capped at 0.99 so
    ``d > 0`` for identical codes. Weighted mean over pairs: ``|S|/|S₁|`` on similar, ``|S|/|S₀|``
    on dissimilar ones. DCH works on its continuous codes directly (head ``activation: identity``).
    Terms: ``similarity`` and ``quantization`` = :class:`Cauchy` (γ) on u:
    ``mean log(1 + d(|u|, 𝟙)/γ)`` (λ = 0.1 goes in ``quantization_weight``).

    Args:
        gamma: Cauchy scale γ (20), shared by both terms.
        bank: pair the batch with a bank of all training codes instead of with itself (the paper).
        global_batch: without a bank, pair across the whole DDP batch.
    """

    def __init__(self, gamma: float = 20.0, bank: bool = False, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        self.gamma = gamma
        self.original_quantization = Cauchy(gamma=gamma)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        cos = F.normalize(rows, dim=1, eps=1e-4) @ F.normalize(columns, dim=1, eps=1e-4).T
        d = 0.5 * h.shape[1] * (1 - cos.clamp(max=0.99))
        s = similarity_matrix(row_labels, column_labels).to(d.dtype)
        loss = s * (d / self.gamma).log1p() + (1 - s) * (self.gamma / d).log1p()
        return {
            "similarity": (balance_weights(s) * loss).mean(),
            "quantization": self.original_quantization(u),
        }
