"""IDHN (Zhang et al., IEEE TMM 2019): soft pairwise similarity for multi-label data."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, pairwise_likelihood
from hashbench.quantizers import SoftsignUnitL1, UnitL1

#: a pair whose cosine similarity is within this of 0 or 1 is "hard" (the authors' code: 0.01)
HARD_TOLERANCE = 0.01


def cosine_similarity_matrix(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """``s_ij = y_i·y_j / (‖y_i‖ ‖y_j‖)`` ∈ [0, 1] for multi-hot ``(N, C)``, ``(M, C)`` → ``(N, M)``.

    A row without a label has no direction: its similarities are 0.
    """
    a = F.normalize(labels_a.float(), dim=1)
    b = F.normalize(labels_b.float(), dim=1)
    return a @ b.T


class IDHN(PairwiseLoss):
    """Soft similarity ``s_ij = cos(y_i, y_j)``; codes ``z = u / (1 + |u|)`` (softsign of the raw output).

    * hard pairs (s = 0 or 1, within 0.01): cross-entropy ``log(1 + e^Θ) − s·Θ``, ``Θ = (β/m) z_i·z_j``;
    * soft pairs (0 < s < 1): ``γ·m·(ŝ_ij − s_ij)²`` with ``ŝ = (z_i·z_j + m)/(2m)``, the code
      similarity 1 − d_H/m once the codes are binary;

    ``similarity`` is the mean over all pairs. ``quantization = mean(|1 − |z||)`` on the softsign codes
    (:class:`SoftsignUnitL1` on u; α = 0.1 goes in ``quantization_weight``). Use head
    ``activation: identity``: the softsign is applied here, and sign(z) = sign(u) at evaluation.

    Single-label data has only hard pairs (s ∈ {0, 1}), so IDHN reduces there to a DPSH-style
    likelihood on Θ = (β/m) z_i·z_j plus the L1 term.

    Values are the authors' code (β = 5, γ = 0.1, α = 0.1, pairs within the mini-batch).
    DeepHash-pytorch's port pairs with a bank of all training codes (``bank: true``) and uses other
    scales (Θ = ½ z_i·z_j, soft loss ``(½ z_i·z_j + m − 2sm)²``), which are not offered here.

    Args:
        beta: β, the inner product's scale in Θ is β/m (5).
        gamma: γ, weight of the squared loss on soft pairs (0.1).
        softsign: use z = softsign(u) (IDHN); off, the head's h and :class:`UnitL1` on it.
        bank: pair the batch with a bank of all training codes instead of with itself.
        global_batch: without a bank, pair across the whole DDP batch (identity on one process).
    """

    def __init__(
        self,
        beta: float = 5.0,
        gamma: float = 0.1,
        softsign: bool = True,
        bank: bool = False,
        global_batch: bool = True,
    ) -> None:
        super().__init__(bank, global_batch)
        if beta <= 0 or gamma < 0:
            raise ValueError(f"IDHN needs beta > 0 and gamma >= 0, got {beta}, {gamma}")
        self.beta = beta
        self.gamma = gamma
        self.softsign = softsign
        self.original_quantization = SoftsignUnitL1() if softsign else UnitL1()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes = F.softsign(u) if self.softsign else h
        rows, row_labels, columns, column_labels = self.pairs(codes, labels, indices)
        m = codes.shape[1]
        inner = rows @ columns.T
        s = cosine_similarity_matrix(row_labels, column_labels).to(inner.dtype)
        hard = (s < HARD_TOLERANCE) | (s > 1 - HARD_TOLERANCE)
        theta = (self.beta / m) * inner
        soft_loss = self.gamma * m * ((inner + m) / (2 * m) - s).pow(2)
        loss = torch.where(hard, pairwise_likelihood(theta, s), soft_loss)
        return {
            "similarity": loss.mean(),
            "quantization": self.original_quantization(u if self.softsign else h),
        }
