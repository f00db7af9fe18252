"""DSHSD (IEEE Access 2019, "Deep Supervised Hashing Based on Stable Distribution"): DSH's contrastive loss
on tanh codes plus a linear classifier."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import full_precision, require_setup
from hashbench.losses.classification import _ClassifierLoss
from hashbench.losses.pairwise import global_batch, similarity_matrix


class DSHSD(_ClassifierLoss):
    """``similarity = α · mean_ij [½ s·d_ij + ½ (1 − s)·max(2m − d_ij, 0)]``, ``d_ij = ‖h_i − h_j‖²`` on the
    tanh codes h (head ``activation: tanh``), plus ``classification``: a linear classifier (no bias) on h,
    softmax cross-entropy on single-label data, per-class sigmoid cross-entropy *summed over classes*
    (mean over samples) on multi-label data.

    No separate quantization term: the tanh bounds the codes and nothing else pulls them to ±1, so a
    plug-in quantizer is added. The formula, α = 0.05 and the in-batch pairing follow DeepHash-pytorch's
    port, the only implementation read for this class (the paper itself was not available).

    Args:
        alpha: α, weight of the contrastive term relative to the classification term (0.05).
        global_batch: pair across the whole DDP batch (identity on one process).
    """

    def __init__(self, alpha: float = 0.05, global_batch: bool = True) -> None:
        super().__init__(classifier_bias=False)
        if alpha < 0:
            raise ValueError(f"DSHSD alpha must be >= 0, got {alpha}")
        self.alpha = alpha
        self.global_batch = global_batch

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels = global_batch(h, labels, self.global_batch)
        distance = (rows.pow(2).sum(1, keepdim=True) + rows.pow(2).sum(1) - 2 * rows @ rows.T).clamp_min(0)
        s = similarity_matrix(row_labels, row_labels).to(distance.dtype)
        margin = 2.0 * h.shape[1]
        contrastive = 0.5 * s * distance + 0.5 * (1 - s) * (margin - distance).clamp_min(0)
        logits = require_setup(self, self.classifier)(h)
        if self.multi_label:
            target = labels.to(logits.dtype)
            classification = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(h)
        else:
            classification = F.cross_entropy(logits, labels.to(logits.dtype))
        return {"similarity": self.alpha * contrastive.mean(), "classification": classification}
