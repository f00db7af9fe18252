"""DHN (Zhu et al., AAAI 2016): pairwise cross-entropy on inner products plus a smooth L1 quantization."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, pairwise_likelihood, similarity_matrix
from hashbench.quantizers import LogCosh


class DHN(PairwiseLoss):
    """``Θ_ij = scale · z_i·z_j``; similarity = mean over pairs of ``log(1 + e^Θ) − s·Θ``, z the head's h.

    DHN squashes its hash layer with tanh (head ``activation: tanh``) and applies both terms to
    that output z. Terms: ``similarity`` and ``quantization = mean(log cosh(|z| − 1))``
    (:class:`LogCosh`, the smooth surrogate of the paper's ‖|z| − 1‖₁ under a bimodal Laplacian
    prior); λ goes in ``quantization_weight`` (0.2 in the authors' released NUS-WIDE setup).

    The authors' code (hash-caffe) uses the plain inner product (``scale`` 1) over the pairs of a
    mini-batch, both terms as means. DeepHash-pytorch's port instead uses ``scale`` ½ (DPSH's Θ),
    a bank of every training code (``bank: true``), the raw linear output (head
    ``activation: identity``) and λ = 0.1: set those options to compare against it.

    Args:
        scale: factor on the inner product in Θ (1, the authors' code; 0.5 in DeepHash-pytorch).
        bank: pair the batch with a bank of all training codes instead of with itself.
        global_batch: without a bank, pair across the whole DDP batch (identity on one process).
    """

    def __init__(self, scale: float = 1.0, bank: bool = False, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        if scale <= 0:
            raise ValueError(f"DHN scale must be > 0, got {scale}")
        self.scale = scale
        self.original_quantization = LogCosh()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        theta = self.scale * rows @ columns.T
        similarity = similarity_matrix(row_labels, column_labels).to(theta.dtype)
        return {
            "similarity": pairwise_likelihood(theta, similarity).mean(),
            "quantization": self.original_quantization(h),
        }
