"""LCDSH (Zhu & Gao, IJCAI 2017): pairwise likelihood with a locality-constrained quantization term."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, pairwise_likelihood, similarity_matrix
from hashbench.quantizers import LocalityConstrained


class LCDSH(PairwiseLoss):
    """``Θ_ij = ½ u_i·u_j``; similarity = mean over pairs of ``log(1 + e^{−s̃Θ})`` with s̃ = ±1, which is
    ``log(1 + e^Θ) − s·Θ`` for s ∈ {0, 1}. LCDSH uses the raw linear output: head ``activation: identity``.

    Terms: ``similarity`` and ``quantization`` = :class:`LocalityConstrained` on u,
    ``mean_ij (σ(½ u_i·u_j) − σ(½ b_i·b_j))²`` with b = sign u over the pairs of the (local) batch;
    λ = 3 goes in ``quantization_weight``. The values and the in-batch pairing follow
    DeepHash-pytorch's port, the only implementation read for this class.

    Args:
        bank: pair the batch with a bank of all training codes instead of with itself.
        global_batch: without a bank, pair across the whole DDP batch (the quantization term stays per rank).
    """

    def __init__(self, bank: bool = False, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        self.original_quantization = LocalityConstrained()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        theta = 0.5 * rows @ columns.T
        similarity = similarity_matrix(row_labels, column_labels).to(theta.dtype)
        return {
            "similarity": pairwise_likelihood(theta, similarity).mean(),
            "quantization": self.original_quantization(u),
        }
