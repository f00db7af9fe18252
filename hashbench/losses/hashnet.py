"""HashNet (Cao et al., ICCV 2017): weighted pairwise likelihood on tanh(βu), with continuation on β."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.pairwise import PairwiseLoss, balance_weights


class HashNet(PairwiseLoss):
    """Codes ``z = tanh(β·u)`` (applied here to the raw output u: use head ``activation: identity``).

    ``D_ij = α·z_i·z_j``; similarity = ``Σ w_ij [log(1 + e^D) − s·D] / Σ 1`` with weights
    ``|S|/|S₁|`` on similar and ``|S|/|S₀|`` on dissimilar pairs, so both count equally.

    Evaluation binarises z (:meth:`codes`), so the quantization error and bit balance are
    measured on tanh(βu) at the current β, not on the head's output.

    Continuation (the switch ``continuation``): ``β = √(1 + ⌊epoch / continuation_step⌋)``, set at
    the start of every epoch and kept in a buffer (checkpointed); with it off β stays 1. HashNet has
    no separable quantization term (continuation does that work), so it returns none: a plug-in
    quantizer is *added* — with ``continuation`` on that is the HSWD authors' code, off the pure
    replacement.

    Args:
        alpha: α, the scale of the inner product (0.1; HashNet's own code uses 10/bits).
        continuation: raise β during training.
        continuation_step: epochs per β step (20 in the HSWD authors' code).
        bank: pair the batch with a bank of all training codes (the HSWD authors' code, which the
            reproduction configs follow) instead of with itself (the paper).
        global_batch: without a bank, pair across the whole DDP batch.
    """

    beta: Tensor

    def __init__(
        self,
        alpha: float = 0.1,
        continuation: bool = True,
        continuation_step: int = 20,
        bank: bool = False,
        global_batch: bool = True,
    ) -> None:
        super().__init__(bank, global_batch)
        if continuation_step < 1:
            raise ValueError(f"continuation_step must be >= 1, got {continuation_step}")
        self.alpha = alpha
        self.continuation = continuation
        self.continuation_step = continuation_step
        self.register_buffer("beta", torch.tensor(1.0))

    def on_train_epoch_start(self, epoch: int) -> None:
        beta = math.sqrt(1 + epoch // self.continuation_step) if self.continuation else 1.0
        self.beta.fill_(beta)

    def codes(self, u: Tensor, h: Tensor) -> Tensor:
        """``tanh(β·u)`` at the current β: what HashNet binarises."""
        return torch.tanh(self.beta.to(u.dtype) * u)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        z = self.codes(u, h)
        nll, s = self.likelihood(z, labels, indices, scale=self.alpha)
        return {"similarity": (balance_weights(s) * nll).mean()}
