"""The hash layer: features → continuous codes."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn


class _BiHalf(torch.autograd.Function):
    """Bi-half forward (per bit: the ⌊N/2⌋ largest of the batch → +1, the rest → −1); backward the
    straight-through gradient plus ``γ·(u − b)/(N·m)`` (Li & van Gemert, AAAI 2021)."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, gamma: float) -> Tensor:
        n = u.shape[0]
        order = u.argsort(dim=0, descending=True)
        ranked = torch.ones_like(u)
        ranked[n // 2 :] = -1
        b = torch.empty_like(u).scatter_(0, order, ranked)
        ctx.save_for_backward(u, b)
        ctx.gamma = gamma
        return b

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        u, b = ctx.saved_tensors
        return grad + ctx.gamma * (u - b) / b.numel(), None


def bihalf(u: Tensor, gamma: float = 6.0) -> Tensor:
    """Bi-half codes of a batch ``(N, m)``: each bit column split at its median into +1 (upper ⌊N/2⌋)
    and −1, with the straight-through gradient (plus ``γ·(u − b)/(N·m)``, the paper's γ = 6)."""
    return _BiHalf.apply(u, gamma)


class HashHead(nn.Module):
    """Linear layer to ``bits`` outputs, optional BatchNorm, then an activation.

    ``forward`` returns ``(u, h)``: the raw output ``u`` and ``h = activation(u)``, both
    ``(N, bits)``. Binary codes are ``sign(h)`` with sign(0) = +1.

    Activations: ``tanh``; ``identity`` (for methods that transform u themselves: HashNet's
    tanh(βu), GreedyHash's sign, DBDH's clamp, OrthoHash); ``bihalf`` — in training the bi-half
    binarisation of the batch (:func:`bihalf`, straight-through; the OrthoHash table's "CE+Bihalf"),
    in evaluation ``h = u`` (codes sign(u), as the bi-half paper).

    Args:
        bits: code length m (>= 1).
        batch_norm: BatchNorm1d after the linear layer (OrthoHash, "CE+BN").
        activation: ``tanh``, ``identity`` or ``bihalf``.
        bias: bias in the linear layer.
        bihalf_gamma: γ of the bi-half backward pass (6).
    """

    def __init__(
        self,
        bits: int = 64,
        batch_norm: bool = False,
        activation: Literal["tanh", "identity", "bihalf"] = "tanh",
        bias: bool = True,
        bihalf_gamma: float = 6.0,
    ) -> None:
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1 (the code length), got {bits}")
        self.bits = bits
        self.batch_norm = batch_norm
        self.activation = activation
        self.bias = bias
        self.bihalf_gamma = bihalf_gamma
        self.linear: nn.Linear | None = None
        self.norm: nn.Module = nn.BatchNorm1d(bits) if batch_norm else nn.Identity()

    def build(self, in_features: int) -> None:
        """Create the linear layer once the backbone's feature size is known."""
        self.linear = nn.Linear(in_features, self.bits, bias=self.bias)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        if self.linear is None:
            raise RuntimeError("HashHead.build(in_features) must be called before forward")
        u = self.norm(self.linear(features))
        if self.activation == "tanh":
            return u, torch.tanh(u)
        if self.activation == "bihalf" and self.training:
            return u, bihalf(u, self.bihalf_gamma)
        return u, u
