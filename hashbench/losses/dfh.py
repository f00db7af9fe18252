"""DFH (Li et al., BMVC 2019, "Push for Quantization: Deep Fisher Hashing"): a margin on the pairwise
likelihood, class centres C in {±1}, and codes b pulled towards their class centre."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.codes import sign_pm1
from hashbench.losses.base import TrainingContext, full_precision, require_setup
from hashbench.losses.pairwise import CodeBank, PairwiseLoss, similarity_matrix

#: the centre step's gradient descent on the relaxed centres (the authors' code): steps, rate, decays
CENTER_STEPS = 200
CENTER_LR = 0.03
CENTER_DECAY_AT = (150, 180)


def dfh_binary_codes(codes: Tensor, labels: Tensor, centers: Tensor, mu: float) -> Tensor:
    """DFH's B step: ``b_i = sign(μ·C y_i + u_i)`` (sign(0) = +1); codes ``(N, m)``, labels ``(N, C)``,
    centres ``(m, C)`` (column c is class c's centre) → ``(N, m)``."""
    return sign_pm1(mu * labels @ centers.T + codes)


def dfh_center_objective(
    relaxed: Tensor, labels: Tensor, b: Tensor, nu: float, center_quantization: float
) -> Tensor:
    """The centre step's objective on relaxed centres V ``(m, C)`` (0-d):

    ``mean((V yᵢ − bᵢ)²)`` (within class) ``+ ν·mean((VᵀV − m(2I − 11ᵀ))²)`` (centres pairwise opposite)
    ``+ η_c·mean((V − sign V)²)``; labels ``(n, C)``, b ``(n, m)``.
    """
    m, num_classes = relaxed.shape
    target = m * (2 * torch.eye(num_classes, dtype=relaxed.dtype, device=relaxed.device) - 1)
    within = (labels @ relaxed.T - b).pow(2).mean()
    between = (relaxed.T @ relaxed - target).pow(2).mean()
    return within + nu * between + center_quantization * (relaxed - sign_pm1(relaxed.detach())).pow(2).mean()


def dfh_center_step(
    relaxed: Tensor, labels: Tensor, b: Tensor, nu: float, center_quantization: float
) -> Tensor:
    """Gradient descent on :func:`dfh_center_objective` from ``relaxed`` (200 steps, rate 0.03, ×0.1 at
    steps 150 and 180, as the authors' code); returns the new relaxed centres ``(m, C)``."""
    relaxed = relaxed.detach().clone().requires_grad_(True)
    lr = CENTER_LR
    with torch.enable_grad():
        for step in range(CENTER_STEPS):
            if step in CENTER_DECAY_AT:
                lr *= 0.1
            (grad,) = torch.autograd.grad(
                dfh_center_objective(relaxed, labels, b, nu, center_quantization), relaxed
            )
            relaxed = (relaxed - lr * grad).detach().requires_grad_(True)
    return relaxed.detach()


class DFH(PairwiseLoss):
    """Network step against the bank of every training code (the authors' code), on the raw output u
    (head ``activation: identity``):

    * ``similarity``: ``s·log(1 + e^{margin − Θ}) + (1 − s)·log(1 + e^{margin + Θ})``, ``Θ = ½ u_i·u_j``,
      mean over pairs: similar pairs are pushed past Θ = margin, dissimilar ones below −margin;
    * ``quantization``: ``mean((b − u)²)`` with ``b = sign(μ·C y + u)`` (the B step, per batch, constant),
      the paper's η‖b − u‖² (η = 0.5 goes in ``quantization_weight``); computed inline: it needs C.

    Centre step (at the start of every epoch after the first): with the bank's U and labels Y,
    ``B = sign(μ·C Y + U)``, then gradient descent on the relaxed centres V of
    :func:`dfh_center_objective` (Fisher: codes near their class centre, centres far apart), C = sign V.
    C and V are registered buffers (checkpointed) and start at 0, so b = sign(u) until the first step.
    The authors' code runs the centre step on every mini-batch; here it runs once per epoch on all
    training codes (gathered from every rank, so all ranks agree). The authors' released code sets the
    margin to 0 (its margin line is commented out); DeepHash-pytorch uses 3 and μ = 0.1, CISiPLab's
    FIRe 1 (the default here); the paper's own value was not available to check.

    Args:
        margin: the margin on Θ (1).
        mu: μ, weight of the class centre in the B step (1, the authors' code).
        nu: ν, weight of the between-centres term (1).
        center_quantization: η_c, weight of ‖V − sign V‖² in the centre step (1).
    """

    centers: Tensor
    relaxed_centers: Tensor

    def __init__(
        self, margin: float = 1.0, mu: float = 1.0, nu: float = 1.0, center_quantization: float = 1.0
    ) -> None:
        super().__init__(bank=True)
        if margin < 0 or mu < 0 or nu < 0 or center_quantization < 0:
            raise ValueError(
                "DFH needs margin, mu, nu, center_quantization >= 0; "
                f"got {margin}, {mu}, {nu}, {center_quantization}"
            )
        self.margin = margin
        self.mu = mu
        self.nu = nu
        self.center_quantization = center_quantization

    def allocate(self, context: TrainingContext) -> None:
        self.code_bank = CodeBank(context.num_train, context.bits, context.num_classes)
        self.register_buffer("centers", torch.zeros(context.bits, context.num_classes))
        self.register_buffer("relaxed_centers", torch.zeros(context.bits, context.num_classes))

    def on_train_epoch_start(self, epoch: int) -> None:
        bank = require_setup(self, self.code_bank)
        if epoch == 0 or not bool(bank.seen.any()):
            return
        codes, labels = bank.codes[bank.seen], bank.labels[bank.seen]
        b = dfh_binary_codes(codes, labels, self.centers, self.mu)
        relaxed = dfh_center_step(self.relaxed_centers, labels, b, self.nu, self.center_quantization)
        self.relaxed_centers.copy_(relaxed)
        self.centers.copy_(sign_pm1(relaxed))

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        theta = 0.5 * rows @ columns.T
        s = similarity_matrix(row_labels, column_labels).to(theta.dtype)
        loss = s * F.softplus(self.margin - theta) + (1 - s) * F.softplus(self.margin + theta)
        b = dfh_binary_codes(u.detach(), labels.to(u.dtype), self.centers.to(u.dtype), self.mu)
        return {"similarity": loss.mean(), "quantization": (b - u).pow(2).mean()}
