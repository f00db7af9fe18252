"""DPSH (Li et al., IJCAI 2016): pairwise likelihood on inner products of codes."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss
from hashbench.quantizers import SignL2


class DPSH(PairwiseLoss):
    """``Θ_ij = ½ h_i·h_j``; similarity = mean over pairs of ``log(1 + e^Θ) − s·Θ``.

    Terms: ``similarity`` and ``quantization = mean((u − sign u)²)`` (:class:`SignL2` on the raw
    output; α = 0.1, DeepHash-pytorch's weight for these two means, goes in ``quantization_weight``).

    The paper feeds its linear output u to both terms: use head ``activation: identity`` (then
    h = u). With a ``tanh`` head the likelihood sees tanh(u) while the quantization term sees u.

    With ``bank=True`` (the authors' code) each batch is compared with a bank of the latest code of
    every training image, filled as batches are seen (from every rank under DDP); otherwise the
    batch is compared with itself (the global batch under DDP when ``global_batch``).

    Args:
        bank: compare against the bank of all training codes rather than within the batch.
        global_batch: without a bank, pair across the whole DDP batch (identity on one process).
    """

    def __init__(self, bank: bool = True, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        self.original_quantization = SignL2()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        nll, _ = self.likelihood(h, labels, indices)
        return {"similarity": nll.mean(), "quantization": self.original_quantization(u)}
