"""DSH (Liu et al., CVPR 2016): contrastive loss on squared Euclidean distances of codes."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, similarity_matrix
from hashbench.quantizers import UnitL1


class DSH(PairwiseLoss):
    """``½ s·‖h_i − h_j‖² + ½ (1 − s)·max(margin − ‖h_i − h_j‖², 0)``, mean over pairs.

    ``margin`` defaults to 2m (m bits), the paper's choice. DSH uses the raw linear output (head
    ``activation: identity``). Terms: ``similarity`` and ``quantization = mean(|1 − |u||)``
    (:class:`UnitL1` on u; the paper's α = 0.1 goes in ``quantization_weight``).

    Args:
        margin: margin on the squared distance of dissimilar pairs; ``None`` = 2·bits.
        bank: pair the batch with a bank of all training codes (DeepHash-pytorch) instead of itself.
        global_batch: without a bank, pair across the whole DDP batch.
    """

    def __init__(self, margin: float | None = None, bank: bool = False, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        if margin is not None and margin <= 0:
            raise ValueError(f"DSH margin must be > 0, got {margin}")
        self.margin = margin
        self.original_quantization = UnitL1()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        margin = 2.0 * h.shape[1] if self.margin is None else self.margin
        distance = (
            rows.pow(2).sum(1, keepdim=True) + columns.pow(2).sum(1) - 2 * rows @ columns.T
        ).clamp_min(0)
        s = similarity_matrix(row_labels, column_labels).to(distance.dtype)
        loss = 0.5 * s * distance + 0.5 * (1 - s) * (margin - distance).clamp_min(0)
        return {"similarity": loss.mean(), "quantization": self.original_quantization(u)}
