"""DSDH (Li et al., NeurIPS 2017): DPSH likelihood plus a linear classifier on discrete codes B, solved
by alternating a network step with a closed-form W step and discrete cyclic coordinate descent on B."""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.codes import sign_pm1
from hashbench.losses.base import TrainingContext, full_precision, require_setup
from hashbench.losses.pairwise import CodeBank, PairwiseLoss


def dsdh_objective(
    codes: Tensor, labels: Tensor, b: Tensor, w: Tensor, mu: float, nu: float, eta: float
) -> Tensor:
    """The part of DSDH's objective that the discrete step minimises (0-d).

    ``μ‖Y − B W‖² + ν‖W‖² + η‖B − U‖²`` with codes U ``(n, m)``, labels Y ``(n, C)``, B ``(n, m)``
    in {±1} and W ``(m, C)`` (the paper's ``y_i ≈ Wᵀ b_i``).
    """
    return mu * (labels - b @ w).pow(2).sum() + nu * w.pow(2).sum() + eta * (b - codes).pow(2).sum()


def dsdh_quantization_weight(eta: float, bits: int, num_train: int) -> float:
    """``quantization_weight`` λ = η·m/(2n) that gives the coupling the paper's weight η relative to
    the likelihood (see :class:`DSDH`), for m ``bits`` and n ``num_train`` training images."""
    return eta * bits / (2 * num_train)


def dsdh_discrete_step(
    codes: Tensor, labels: Tensor, b: Tensor, mu: float, nu: float, eta: float, iterations: int
) -> tuple[Tensor, Tensor]:
    """Alternate ``iterations`` times: the W step, then one sweep of discrete cyclic coordinate descent on B.

    * W step: ``W = (BᵀB + (ν/μ) I)⁻¹ BᵀY`` (exact minimiser).
    * B step, bit by bit: ``B_{:,k} = sign(Q_{:,k} − B_{:,¬k} G_{¬k,k})`` with ``Q = Y Wᵀ + (η/μ) U``
      and ``G = W Wᵀ`` (exact minimiser of column k given the others), sign(0) = +1.

    Neither step can raise :func:`dsdh_objective`. Shapes as there; returns ``(B, W)``.
    """
    b = b.clone()
    m = b.shape[1]
    eye = torch.eye(m, dtype=b.dtype, device=b.device)
    w = torch.zeros(m, labels.shape[1], dtype=b.dtype, device=b.device)
    for _ in range(iterations):
        w = torch.linalg.solve(b.T @ b + (nu / mu) * eye, b.T @ labels)
        q = labels @ w.T + (eta / mu) * codes
        g = w @ w.T
        for k in range(m):
            b[:, k] = sign_pm1(q[:, k] - b @ g[:, k] + b[:, k] * g[k, k])
    return b, w


class DSDH(PairwiseLoss):
    """Network step: ``similarity`` = DPSH likelihood ``Θ_ij = ½ h_i·h_j`` of the batch against the bank of
    every training code; ``quantization`` = ``mean((h − b)²)`` with b the sample's row of the discrete
    codes B (the paper's η‖b − u‖² coupling; DSDH uses the raw output: head ``activation: identity``).

    Discrete step (the switch ``discrete_step``), at the start of every epoch after the first:
    :func:`dsdh_discrete_step` on the bank U and labels Y of all training samples (gathered from
    every rank, so under DDP every rank computes the same B and W). Before the first step, and for
    samples not yet in the bank, b = sign(h) (the B step's answer when W = 0). B, W and the bank are
    registered buffers (checkpointed).

    Weights. Once the bank holds all n training codes, the gradient of ``similarity`` (mean over the
    N×n pairs, the bank detached) for a batch row u_i is ``Σ_j (σ(Θ_ij) − s_ij) u_j / (2Nn)``: half of
    the paper's ``Σ_j (σ(Θ_ij) − s_ij) u_j`` per 1/(Nn), since the paper's sum over ordered pairs
    holds u_i in Θ_ij and in Θ_ji. The coupling ``mean((h − b)²)`` over the N·m entries gives
    ``2λ(u_i − b_i)/(Nm)`` against the paper's ``2η(u_i − b_i)``. Both match the paper up to one
    factor 1/(2Nn) when ``quantization_weight = η·m/(2n)`` (:func:`dsdh_quantization_weight`; e.g.
    55·32/10000 = 0.176 on CIFAR-10 at 32 bits); η·m/n would double the paper's η.
    μ‖y − Wᵀb‖² and ν‖W‖² do not depend on the network: they enter only the discrete step.
    DeepHash-pytorch's port (and the HSWD authors' code built on it) drops the coupling from the
    network loss, which makes the discrete step pointless: with ``quantizer: original`` that is
    *not* DSDH.

    Args:
        mu: μ, weight of the classification term in the discrete step (1).
        nu: ν, weight of ‖W‖² (1).
        eta: η, weight of ‖B − U‖² in the discrete step (55).
        iterations: W/B alternations per discrete step (10).
        discrete_step: run the discrete step; off, b = sign(h) throughout (DPSH's term).
    """

    b_codes: Tensor
    w: Tensor

    def __init__(
        self,
        mu: float = 1.0,
        nu: float = 1.0,
        eta: float = 55.0,
        iterations: int = 10,
        discrete_step: bool = True,
    ) -> None:
        super().__init__(bank=True)
        if mu <= 0 or nu < 0 or eta < 0 or iterations < 1:
            raise ValueError(
                f"DSDH needs mu > 0, nu >= 0, eta >= 0, iterations >= 1; got {mu}, {nu}, {eta}, {iterations}"
            )
        self.mu = mu
        self.nu = nu
        self.eta = eta
        self.iterations = iterations
        self.discrete_step = discrete_step

    def allocate(self, context: TrainingContext) -> None:
        self.code_bank = CodeBank(context.num_train, context.bits, context.num_classes)
        self.register_buffer("b_codes", torch.zeros(context.num_train, context.bits))  # 0 = not set yet
        self.register_buffer("w", torch.zeros(context.bits, context.num_classes))

    def on_train_epoch_start(self, epoch: int) -> None:
        bank = require_setup(self, self.code_bank)
        if not self.discrete_step or epoch == 0 or not bool(bank.seen.any()):
            return
        seen = bank.seen
        codes, labels = bank.codes[seen].double(), bank.labels[seen].double()
        start = self.b_codes[seen].double()
        start = torch.where(start == 0, sign_pm1(codes), start)
        b, w = dsdh_discrete_step(codes, labels, start, self.mu, self.nu, self.eta, self.iterations)
        self.b_codes[seen] = b.to(self.b_codes.dtype)
        self.w.copy_(w)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        nll, _ = self.likelihood(h, labels, indices)
        b = self.b_codes[indices].to(h.dtype)
        b = torch.where(b == 0, sign_pm1(h.detach()), b)
        return {"similarity": nll.mean(), "quantization": (h - b).pow(2).mean()}
