"""ADSH (Jiang & Li, AAAI 2018): the network learns query codes; database codes V are learned discretely."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hashbench.codes import sign_pm1
from hashbench.losses.base import HashLoss, TrainingContext, full_precision, require_setup
from hashbench.losses.pairwise import CodeBank, similarity_matrix

SimilarityKind = Literal["pm1", "balanced"]
#: rows of the n × n similarity matrix formed at a time in the discrete step (bounds its memory)
CHUNK_ROWS = 4096


def adsh_similarity(shared: Tensor, kind: SimilarityKind) -> Tensor:
    """ADSH's targets from 0/1 "shares a label" ``shared`` ``(N, M)``.

    ``pm1``: S = 2·shared − 1 ∈ {−1, +1} (the paper). ``balanced``: similar pairs 1, dissimilar −r with
    r = #similar / #dissimilar in ``shared`` (the authors' code, "soft constraint").
    """
    if kind == "pm1":
        return 2 * shared - 1
    r = shared.sum() / (shared.numel() - shared.sum()).clamp_min(1)
    return shared * (1 + r) - r


def adsh_objective(codes: Tensor, v: Tensor, s: Tensor, gamma: float) -> Tensor:
    """ADSH's objective with Ω = Γ (every point both anchor and database point), 0-d:
    ``‖U Vᵀ − c·S‖² + γ‖V − U‖²``, U ``(n, c)`` network codes, V ``(n, c)`` in {±1}, S ``(n, n)``."""
    c = codes.shape[1]
    return (codes @ v.T - c * s).pow(2).sum() + gamma * (v - codes).pow(2).sum()


def _similarity_times_codes(labels: Tensor, codes: Tensor, kind: SimilarityKind) -> Tensor:
    """``S U`` ``(n, c)``, S = :func:`adsh_similarity` of all label pairs ``(n, C)``, by row chunks."""
    shared_codes = torch.empty_like(codes)
    positives = codes.new_zeros(())
    for start in range(0, len(labels), CHUNK_ROWS):
        shared = similarity_matrix(labels[start : start + CHUNK_ROWS], labels).to(codes.dtype)
        shared_codes[start : start + CHUNK_ROWS] = shared @ codes
        positives = positives + shared.sum()
    column_sums = codes.sum(dim=0, keepdim=True)
    if kind == "pm1":
        return 2 * shared_codes - column_sums
    r = positives / (len(labels) ** 2 - positives).clamp_min(1)
    return (1 + r) * shared_codes - r * column_sums


def adsh_discrete_step(
    codes: Tensor, labels: Tensor, v: Tensor, gamma: float, kind: SimilarityKind
) -> Tensor:
    """One sweep of ADSH's bit-by-bit closed form for V, with Ω = Γ (all n points).

    ``Q = −2c·S U − 2γ U``; for each bit k, ``V_{:,k} = sign(−2 V_{:,¬k} (U_{:,¬k}ᵀ U_{:,k}) − Q_{:,k})``,
    sign(0) = +1: the exact minimiser of :func:`adsh_objective` over column k given the others (the
    objective is linear in a ±1 column), so the sweep cannot raise it. ``codes`` U ``(n, c)``,
    ``labels`` ``(n, C)``, start ``v`` ``(n, c)``; returns the new V.
    """
    v = v.clone()
    c = codes.shape[1]
    q = -2 * c * _similarity_times_codes(labels, codes, kind) - 2 * gamma * codes
    gram = codes.T @ codes
    for k in range(c):
        others = v @ gram[:, k] - v[:, k] * gram[k, k]
        v[:, k] = sign_pm1(-2 * others - q[:, k])
    return v


class ADSH(HashLoss):
    """Asymmetric: the network gives the anchors' codes h (tanh: head ``activation: tanh``); the database
    codes V ∈ {±1}^{n×c}, one per training image, are a registered buffer learned by a discrete step.

    Network step, per batch of anchors i against every training image j seen so far:
    ``similarity = mean_ij (h_iᵀ v_j − c·S_ij)²`` and ``quantization = mean((v_i − h_i)²)`` (the
    paper's γ‖v_i − h_i‖², computed inline: v_i is state). S_ij = ±1 (``similarity: pm1``, the
    paper) or the authors' code's balanced targets (``balanced``: 1 and −#similar/#dissimilar).

    Discrete step (at the start of every ``step_every``-th epoch after the first):
    :func:`adsh_discrete_step` on the bank U of the latest tanh codes and labels of all training
    images (gathered from every rank: every rank computes the same V). V starts at 0 as in the
    authors' code, so the first epoch only fills the bank.

    Mapping to the paper. The paper samples, per outer iteration (T_out = 50), m = 2,000 anchors Ω
    from the database Γ, trains the network T_in = 3 epochs over Ω against all of V, then updates V
    with Ω's codes. Here Ω is the whole training set (every image of an epoch is an anchor) and Γ
    the training set too; one outer iteration is ``step_every`` epochs (T_in; 1 by default), the
    number of outer iterations the number of epochs. Differences: Ω is not resampled (it is all of
    Γ); the similarity term is a mean, so the paper's weights map to
    ``quantization_weight = γ·c/n`` (n training images: 200·32/800 = 8 on digits at 32 bits; 1.28 on
    CIFAR-10's 5,000); and hashbench ranks a *separate* database by the network's codes, whereas
    ADSH's database is its training set coded by V: V is a training device here, not the retrieval
    index. DeepHash-pytorch's port follows the authors' code (balanced S, γ = 200, 2,000 samples).

    Args:
        gamma: γ of the discrete step (200).
        similarity: ``pm1`` (±1, the paper) or ``balanced`` (the authors' code).
        step_every: epochs between discrete steps (the paper's T_in).
    """

    v: Tensor
    code_bank: CodeBank | None

    def __init__(self, gamma: float = 200.0, similarity: SimilarityKind = "pm1", step_every: int = 1) -> None:
        super().__init__()
        if gamma < 0 or step_every < 1:
            raise ValueError(f"ADSH needs gamma >= 0 and step_every >= 1, got {gamma}, {step_every}")
        if similarity not in ("pm1", "balanced"):
            raise ValueError(f"ADSH similarity must be 'pm1' or 'balanced', got {similarity!r}")
        self.gamma = gamma
        self.similarity = similarity
        self.step_every = step_every
        self.code_bank = None

    def allocate(self, context: TrainingContext) -> None:
        self.code_bank = CodeBank(context.num_train, context.bits, context.num_classes)
        self.register_buffer("v", torch.zeros(context.num_train, context.bits))  # 0 = not learned yet

    def on_train_epoch_start(self, epoch: int) -> None:
        bank = require_setup(self, self.code_bank)
        if epoch == 0 or epoch % self.step_every or not bool(bank.seen.any()):
            return
        seen = bank.seen
        v = adsh_discrete_step(
            bank.codes[seen].double(),
            bank.labels[seen].double(),
            self.v[seen].double(),
            self.gamma,
            self.similarity,
        )
        self.v[seen] = v.to(self.v.dtype)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        bank = require_setup(self, self.code_bank)
        bank.update(h, labels, indices)
        columns = self.v[bank.seen].to(h.dtype)
        shared = similarity_matrix(labels, bank.labels[bank.seen]).to(h.dtype)
        target = h.shape[1] * adsh_similarity(shared, self.similarity)
        return {
            "similarity": (h @ columns.T - target).pow(2).mean(),
            "quantization": (self.v[indices].to(h.dtype) - h).pow(2).mean(),
        }
