"""DTSH (Wang et al., ACCV 2016): likelihood of triplet orderings of code inner products."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.distributed import global_batch
from hashbench.losses.base import HashLoss, full_precision
from hashbench.losses.pairwise import similarity_matrix
from hashbench.quantizers import SignL2


class DTSH(HashLoss):
    """Triplets (anchor i, positive j, negative k) of the batch — the global batch under DDP:
    ``Θ_ij = scale·h_i·h_j``, loss ``log(1 + e^{−(Θ_ij − Θ_ik − margin)})``. Positives share a label
    with the anchor, negatives none. DTSH uses the raw output (head ``activation: identity``).
    Memory O(N³) for a batch of N.

    The paper (its Θ = ½ bᵢᵀbⱼ, as DPSH, and one sum over the triplet set) is the default: ``scale=0.5``,
    ``reduction="triplet"`` (mean over all triplets, j ≠ i). DeepHash-pytorch's DTSH (copied by
    CISiPLab's FIRe) is ``scale=1.0, reduction="anchor", self_positive=True``: Θ = uᵢᵀuⱼ, a mean
    over each anchor's (positive, negative) pairs with the anchor among its own positives, then a
    mean over the anchors that have a negative. Either way the loss is 0 without a triplet.

    Terms: ``similarity`` and ``quantization`` = :class:`SignL2` on u, ``mean((u − sign u)²)``
    (λ = 1 goes in ``quantization_weight``).

    Args:
        margin: α in the triplet likelihood (5).
        scale: Θ_ij = scale·h_i·h_j (paper ½; DeepHash-pytorch 1).
        reduction: ``"triplet"`` (mean over all triplets, the paper) or ``"anchor"`` (mean per anchor,
            then over anchors, DeepHash-pytorch).
        self_positive: count the anchor as its own positive (j = i), as DeepHash-pytorch.
        global_batch: form triplets across the whole DDP batch.
    """

    def __init__(
        self,
        margin: float = 5.0,
        scale: float = 0.5,
        reduction: Literal["triplet", "anchor"] = "triplet",
        self_positive: bool = False,
        global_batch: bool = True,
    ) -> None:
        super().__init__()
        if reduction not in ("triplet", "anchor"):
            raise ValueError(f"DTSH reduction must be 'triplet' or 'anchor', got {reduction!r}")
        self.margin = margin
        self.scale = scale
        self.reduction = reduction
        self.self_positive = self_positive
        self.global_batch = global_batch
        self.original_quantization = SignL2()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes, all_labels = global_batch(h, labels, self.global_batch)
        theta = self.scale * codes @ codes.T
        s = similarity_matrix(all_labels, all_labels).bool()
        positive = s if self.self_positive else s & ~torch.eye(len(s), dtype=torch.bool, device=s.device)
        valid = positive[:, :, None] & ~s[:, None, :]  # (anchor, positive, negative)
        margins = theta[:, :, None] - theta[:, None, :] - self.margin
        loss = F.softplus(-margins) * valid
        if self.reduction == "triplet":
            similarity = loss.sum() / valid.sum().clamp_min(1)
        else:
            per_anchor = valid.sum(dim=(1, 2))
            anchors = per_anchor > 0
            mean = loss.sum(dim=(1, 2))[anchors] / per_anchor[anchors]
            similarity = mean.sum() / anchors.sum().clamp_min(1)
        return {"similarity": similarity, "quantization": self.original_quantization(u)}
