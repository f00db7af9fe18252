"""PSLDH (Tu et al., WWW 2021, "Partial-Softmax Loss based Deep Hashing")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.codes import sign_pm1
from hashbench.losses.base import HashLoss, TrainingContext, full_precision, require_setup
from hashbench.quantizers import SignL2


def label_code_objective(codes: Tensor, balance_weight: float, quantization_weight: float) -> Tensor:
    """PSLDH's label-code objective on continuous class codes ``(C, m)`` in (−1, 1) (0-d).

    ``Σ relu(C Cᵀ − m I)²/C² + balance·‖𝟙ᵀ C‖²/C + quantization·‖sign(C) − C‖²/C``: pushes the inner
    products of different classes' codes to ≤ 0 (the diagonal is ≤ m for codes in [−1, 1], so the
    relu leaves it alone), balances each bit over the classes and pulls the codes to ±1.
    """
    num_classes, bits = codes.shape
    eye = torch.eye(num_classes, dtype=codes.dtype, device=codes.device)
    orthogonality = F.relu(codes @ codes.T - bits * eye).pow(2).sum() / num_classes**2
    balance = codes.sum(dim=0).pow(2).sum() / num_classes
    quantization = (sign_pm1(codes.detach()) - codes).pow(2).sum() / num_classes
    return orthogonality + balance_weight * balance + quantization_weight * quantization


def learn_label_codes(
    num_classes: int,
    bits: int,
    seed: int = 0,
    steps: int = 200,
    lr: float = 0.001,
    balance_weight: float = 0.05,
    quantization_weight: float = 0.01,
) -> Tensor:
    """PSLDH's first stage: ±1 class codes ``(C, m)``, the sign of a label network's output on one-hot labels.

    The network is Linear(C, 512) → ReLU → Linear(512, m) → tanh, trained for ``steps`` full-batch
    SGD steps (``lr``, weight decay 1e-4, rate ×0.1 after 100 steps, as the authors' code) on
    :func:`label_code_objective`. Deterministic given ``seed``; torch's global RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(num_classes, 512), nn.ReLU(), nn.Linear(512, bits), nn.Tanh())
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.1)
    one_hot = torch.eye(num_classes)
    for _ in range(steps):
        loss = label_code_objective(net(one_hot), balance_weight, quantization_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        return sign_pm1(net(one_hot))


def partial_softmax_loss(logits: Tensor, labels: Tensor, gamma: float, margin: float) -> Tensor:
    """Partial softmax (0-d): ``mean_i (1/|P_i|) Σ_{c∈P_i} −log p_ic`` over the positive classes P_i of each
    sample, ``p_ic = e^{γ(z_ic − margin)} / (e^{γ(z_ic − margin)} + Σ_{c'∉P_i} e^{γ z_ic'})``.

    Each positive class c of sample i competes only with i's negative classes (not with its other
    positives): the partial softmax. ``logits`` z and multi-hot ``labels`` ``(N, C)``; a sample without
    labels contributes 0.
    """
    positive = labels > 0
    scaled = gamma * logits
    shifted = scaled - gamma * margin
    negatives = torch.logsumexp(scaled.masked_fill(positive, float("-inf")), dim=1, keepdim=True)  # (N, 1)
    log_p = shifted - torch.logaddexp(shifted, negatives)
    per_sample = -(log_p * positive).sum(dim=1) / positive.sum(dim=1).clamp_min(1)
    return per_sample.mean()


class PSLDH(HashLoss):
    """Partial-softmax loss of the codes' inner products with fixed ±1 class codes ``c`` ``(C, m)``:
    :func:`partial_softmax_loss` with logits ``z_ic = h_i · c_c``, scale γ and margin σ·m.

    Class codes: PSLDH's first stage, :func:`learn_label_codes` (a label network trained on
    :func:`label_code_objective`, then signed), run once in :meth:`setup` from ``seed`` (a buffer).
    The authors' head is Linear + tanh (head ``activation: tanh``).

    Terms: ``similarity`` and ``quantization`` = :class:`SignL2` on h, ``mean((h − sign h)²)``. PSLDH weighs
    ``Σ_i ‖sign h_i − h_i‖²/N`` with λ = 0.01: as a mean over the N·m entries that is
    ``quantization_weight = λ·m`` (0.32 at 32 bits).

    Args:
        gamma: γ, the logits' scale (0.2).
        sigma: σ, the margin as a fraction of m (0.2).
        seed: seed of the label network.
    """

    label_codes: Tensor

    def __init__(self, gamma: float = 0.2, sigma: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        if not gamma > 0 or sigma < 0:
            raise ValueError(f"PSLDH needs gamma > 0 and sigma >= 0, got {gamma} and {sigma}")
        self.gamma = gamma
        self.sigma = sigma
        self.seed = seed
        self.original_quantization = SignL2()

    def allocate(self, context: TrainingContext) -> None:
        self.register_buffer("label_codes", learn_label_codes(context.num_classes, context.bits, self.seed))

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        codes = require_setup(self, getattr(self, "label_codes", None)).to(h.dtype)
        logits = h @ codes.T
        return {
            "similarity": partial_softmax_loss(logits, labels, self.gamma, self.sigma * h.shape[1]),
            "quantization": self.original_quantization(h),
        }
