"""Original quantization terms of the second round of methods (IDHN, LCDSH, DHD, JMLH, MDSH), as plug-ins.

Each class computes its method's *unweighted* term; the weight λ lives in the config. As in
:mod:`hashbench.quantizers.original`, elementwise terms are means over all N·m entries and ``sign``
follows hashbench's convention sign(0) = +1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.codes import sign_pm1

from .base import Quantizer

__all__ = ["BernoulliKL", "GaussianBCE", "LocalityConstrained", "SoftsignUnitL1", "UnitL2"]

#: nn.BCELoss clamps each log at −100, so one entry never costs more than 100
BCE_LOG_CLAMP = 100.0


class GaussianBCE(Quantizer):
    """DHD's BCE quantization: ``mean(z_near) + mean(−log(1 − exp(−z_far)))``, ``z_± = (h ∓ 1)²/(2σ²)``.

    Each entry h has two Gaussian "probabilities" ``g_± = exp(−(h ∓ 1)²/(2σ²))`` of being the bit ±1;
    the term is the binary cross-entropy of ``g_s`` against 1 and of ``g_−s`` against 0, where
    ``s = sign(h)`` (a constant): ``z_near = (h − s)²/(2σ²)``, ``z_far = (h + s)²/(2σ²)``. Each log is
    clamped at −100 as ``nn.BCELoss`` does. Its minimum, ``−log(1 − e^{−2/σ²})`` (0.00034 at σ = ½), is
    reached at h = ±1.

    Original: DHD (Jang et al., ECCV 2022) applies it to its tanh-activated codes h with
    λ = λ₂ = 0.1 and σ = 0.5. The authors' code takes ``sign(0) = 0`` (target ½ for an exact zero);
    hashbench's sign(0) = +1 differs only there.

    Args:
        sigma: σ (> 0), the width of the two Gaussians; DHD's default 0.5.
    """

    def __init__(self, sigma: float = 0.5) -> None:
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"GaussianBCE needs sigma > 0, got {sigma}")
        self.sigma = float(sigma)

    def loss(self, x: Tensor) -> Tensor:
        s = sign_pm1(x.detach())
        scale = 2 * self.sigma**2
        near = ((x - s).pow(2) / scale).clamp_max(BCE_LOG_CLAMP)
        far = (-torch.log(-torch.expm1(-(x + s).pow(2) / scale))).clamp_max(BCE_LOG_CLAMP)
        return near.mean() + far.mean()

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class BernoulliKL(Quantizer):
    """JMLH's prior: ``mean_i Σ_k KL(Bern(q_ik) ‖ Bern(½)) = mean_i Σ_k (log 2 − H(q_ik))``, q = sigmoid u.

    The KL of each bit's Bernoulli posterior to the uniform prior, summed over the m bits and averaged
    over the batch (the variational information bottleneck's rate): it pulls every q towards ½ (bit
    entropy up), the opposite of a pull towards ±1; the stochastic binary codes do JMLH's quantization.
    Computed from the logits as ``q·log q + (1 − q)·log(1 − q) + log 2`` with ``log q = −softplus(−u)``.

    Original: JMLH (Shen et al., ICCVW 2019) applies it to the raw logits u of its stochastic binary
    layer with λ = 0.1 (the weight in CISiPLab's FIRe, which benchmarks JMLH). Feed it u; on codes
    that are already probabilities in (0, 1) use ``apply_sigmoid=False``.

    Args:
        apply_sigmoid: apply sigmoid to the input first (JMLH on raw u); False for probabilities.
    """

    def __init__(self, apply_sigmoid: bool = True) -> None:
        super().__init__()
        self.apply_sigmoid = bool(apply_sigmoid)

    def loss(self, x: Tensor) -> Tensor:
        if self.apply_sigmoid:
            q, log_q, log_not_q = torch.sigmoid(x), -F.softplus(-x), -F.softplus(x)
        else:
            eps = torch.finfo(x.dtype).tiny
            q, log_q, log_not_q = x, x.clamp_min(eps).log(), (1 - x).clamp_min(eps).log()
        kl = q * log_q + (1 - q) * log_not_q + math.log(2.0)
        return kl.sum(dim=1).mean()

    def extra_repr(self) -> str:
        return f"apply_sigmoid={self.apply_sigmoid}"


class UnitL2(Quantizer):
    """Squared distance of the magnitudes to 1: ``mean((|h| − 1)²)`` (MDSH).

    Original: MDSH (Wang et al., CVPR 2023) applies it to its tanh-activated codes h with λ = 1e-4.
    """

    def loss(self, x: Tensor) -> Tensor:
        return (x.abs() - 1).pow(2).mean()


class SoftsignUnitL1(Quantizer):
    """L1 distance of the softsign codes' magnitudes to 1: ``mean(|1 − |z||)``, ``z = u / (1 + |u|)`` (IDHN).

    Since ``|z| < 1`` this equals ``mean(1 / (1 + |u|))``. Original: IDHN applies it to the raw output
    u (its codes are softsign(u)) with λ = α = 0.1 (the authors' code).
    """

    def loss(self, x: Tensor) -> Tensor:
        return (1 + x.abs()).reciprocal().mean()


class LocalityConstrained(Quantizer):
    """Locality-constrained quantization (LCDSH): ``mean_ij (σ(½ u_i·u_j) − σ(½ b_i·b_j))²``, ``b = sign u``.

    The pairwise similarity probability of the continuous codes should match that of their binary
    codes; pairs are those of the batch (N² including i = j), the sign is a constant. Original: LCDSH
    applies it to the raw output u with λ = 3 (DeepHash-pytorch's setting).
    """

    def loss(self, x: Tensor) -> Tensor:
        b = sign_pm1(x)
        return (torch.sigmoid(0.5 * x @ x.T) - torch.sigmoid(0.5 * b @ b.T)).pow(2).mean()
