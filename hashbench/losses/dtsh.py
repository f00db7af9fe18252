"""DTSH (Wang et al., ACCV 2016): likelihood of triplet orderings of code inner products."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import HashLoss, full_precision
from hashbench.losses.pairwise import global_batch, similarity_matrix
from hashbench.quantizers import SignL2


class DTSH(HashLoss):
    """Every triplet (anchor i, positive j ≠ i, negative k) of the batch — the global batch under DDP:
    ``Θ_ij = ½ h_i·h_j``, loss ``log(1 + e^{−(Θ_ij − Θ_ik − margin)})``, mean over all such triplets
    (0 when there is none). Positives share a label with the anchor, negatives none. DTSH uses the
    raw output (head ``activation: identity``). Memory O(N³) for a batch of N.

    Terms: ``similarity`` and ``quantization`` = :class:`SignL2` on u, ``mean((u − sign u)²)``
    (λ = 1 goes in ``quantization_weight``).

    Args:
        margin: α in the triplet likelihood (5).
        global_batch: form triplets across the whole DDP batch.
    """

    def __init__(self, margin: float = 5.0, global_batch: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.global_batch = global_batch
        self.original_quantization = SignL2()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes, all_labels = global_batch(h, labels, self.global_batch)
        theta = 0.5 * codes @ codes.T
        s = similarity_matrix(all_labels, all_labels).bool()
        positive = s & ~torch.eye(len(s), dtype=torch.bool, device=s.device)
        valid = positive[:, :, None] & ~s[:, None, :]  # (anchor, positive, negative)
        margins = theta[:, :, None] - theta[:, None, :] - self.margin
        loss = (F.softplus(-margins) * valid).sum() / valid.sum().clamp_min(1)
        return {"similarity": loss, "quantization": self.original_quantization(u)}
