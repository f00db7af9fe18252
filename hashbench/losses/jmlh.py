"""JMLH (Shen et al., ICCVW 2019, "Embarrassingly Simple Binary Representation Learning")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hashbench.losses.base import full_precision, require_setup
from hashbench.losses.classification import _ClassifierLoss
from hashbench.losses.cross_entropy import soft_target_cross_entropy
from hashbench.quantizers.original_extra import BernoulliKL


class _BernoulliStraightThrough(torch.autograd.Function):
    """``1[q > ε]`` forward; the gradient passes to q unchanged (JMLH's stochastic binary neuron)."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, eps: Tensor) -> Tensor:
        return (q > eps).to(q.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def stochastic_binary(u: Tensor, stochastic: bool) -> Tensor:
    """Codes in {0, 1} from logits u ``(N, m)``: ``1[sigmoid(u) > ε]``, ε ~ U(0, 1) (a Bernoulli(sigmoid u)
    sample) when ``stochastic``, else ε = ½ (= ``u > 0``, the evaluation codes); gradient
    ``sigmoid'(u)`` (straight through the threshold). ε comes from torch's global RNG."""
    q = torch.sigmoid(u)
    eps = torch.rand_like(q) if stochastic else torch.full_like(q, 0.5)
    return _BernoulliStraightThrough.apply(q, eps)


class JMLH(_ClassifierLoss):
    """Softmax cross-entropy of a linear classifier (with bias) on stochastic binary codes
    ``b = 1[sigmoid(u) > ε] ∈ {0, 1}``, ε ~ U(0, 1) per bit, with the straight-through gradient
    ``∂b/∂u = sigmoid'(u)`` (the switch ``stochastic``; off, or in evaluation mode, ε = ½).
    Multi-label: softmax cross-entropy against ``y/Σy`` (as FIRe's JMLH). Head ``activation:
    identity``: the loss applies the sigmoid; codes are sign(u), i.e. ε = ½.

    Terms: ``similarity`` (the classifier's CE) and ``quantization`` = the prior term
    :class:`~hashbench.quantizers.original_extra.BernoulliKL` on u, ``mean_i Σ_k KL(Bern(q_ik) ‖ Bern(½))``
    (λ = 0.1 goes in ``quantization_weight``). JMLH has no pull towards ±1: the binarisation is in
    the forward pass. Its KL term is the one regulariser on the codes' distribution (it raises bit
    entropy, the role HSWD's balanced target plays), so a plug-in replaces it; the stochastic
    neuron stays, a switch of its own.

    Args:
        stochastic: sample ε ~ U(0, 1) in training (JMLH); off, threshold at ½ (deterministic).
    """

    def __init__(self, stochastic: bool = True) -> None:
        super().__init__(classifier_bias=True)
        self.stochastic = stochastic
        self.original_quantization = BernoulliKL()

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes = stochastic_binary(u, self.stochastic and self.training)
        logits = require_setup(self, self.classifier)(codes)
        return {
            "similarity": soft_target_cross_entropy(logits, labels),
            "quantization": self.original_quantization(u),
        }
