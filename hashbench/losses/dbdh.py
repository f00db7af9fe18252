"""DBDH (Zheng et al., Neurocomputing 2020): DPSH likelihood on clamped codes with a bit-balance term."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss
from hashbench.quantizers import BitBalance


class DBDH(PairwiseLoss):
    """Codes ``z = clamp(u, −1, 1)`` (the switch ``clamp``; applied here to the raw output u, so use
    head ``activation: identity``); ``Θ_ij = ½ z_i·z_j`` and the DPSH likelihood, mean over pairs.

    Terms: ``similarity`` and ``quantization`` = :class:`BitBalance` on z,
    ``mean_i (mean_k z_ik)²`` (as commonly implemented; α = 0.1 goes in ``quantization_weight``).

    Args:
        clamp: clamp u to [−1, 1] (DBDH's discrete relaxation); off = the raw u.
        bank: pair the batch with a bank of all training codes (DeepHash-pytorch, as DPSH's code).
        global_batch: without a bank, pair across the whole DDP batch.
    """

    def __init__(self, clamp: bool = True, bank: bool = True, global_batch: bool = True) -> None:
        super().__init__(bank, global_batch)
        self.clamp = clamp
        self.original_quantization = BitBalance(p=2, over="code")

    def codes(self, u: Tensor, h: Tensor) -> Tensor:
        """``clamp(u, −1, 1)`` (``u`` with the clamp off): what DBDH binarises."""
        return u.clamp(-1.0, 1.0) if self.clamp else u

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        z = self.codes(u, h)
        nll, _ = self.likelihood(z, labels, indices)
        return {"similarity": nll.mean(), "quantization": self.original_quantization(z)}
