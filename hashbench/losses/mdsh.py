"""MDSH (Wang et al., CVPR 2023, "Deep Hashing with Minimal-Distance-Separated Hash Centers")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import TrainingContext, full_precision, require_setup
from hashbench.losses.centers import hash_centers
from hashbench.losses.pairwise import CodeBank, PairwiseLoss, similarity_matrix
from hashbench.quantizers.original_extra import UnitL2


def gilbert_varshamov_distance(bits: int, num_classes: int) -> int:
    """The smallest d with ``C · Σ_{j<d} binom(m, j) ≥ 2^m``: by the Gilbert–Varshamov bound, C codewords of m
    bits with pairwise Hamming distance ≥ d exist (MDSH's target minimal distance, its ``d_max``)."""
    if bits < 1 or num_classes < 1:
        raise ValueError(f"need bits >= 1 and num_classes >= 1, got {bits} and {num_classes}")
    d, covered = 0, 0
    while num_classes * covered < 2**bits:
        covered += math.comb(bits, d)
        d += 1
    return d


def separation_score(distances: Tensor) -> Tensor:
    """MDSH's score of a set of Hamming distances (last dim): ``mean + min − var`` (population variance)."""
    return distances.mean(-1) + distances.min(-1).values - distances.var(-1, unbiased=False)


def pairwise_distances(centers: Tensor) -> Tensor:
    """Hamming distances of the C(C−1)/2 pairs of ±1 rows ``(C, m)``, as a flat tensor."""
    rows, cols = torch.triu_indices(len(centers), len(centers), offset=1)
    return (centers.shape[1] - (centers[rows] * centers[cols]).sum(1)) / 2


def separated_centers(num_classes: int, bits: int, seed: int = 0, sweeps: int = 50) -> Tensor:
    """``(C, m)`` ±1 centres whose minimal pairwise Hamming distance is pushed up to the Gilbert–Varshamov
    distance (:func:`gilbert_varshamov_distance`), deterministic given ``seed``.

    Start from CSQ's centres (:func:`hash_centers`, Hadamard rows when they exist, as MDSH's authors
    do). Then, centre by centre, flip the bit that most raises :func:`separation_score` of its
    distances to the other centres, while one does; repeat the sweep over centres until the minimal
    distance reaches the target, no flip helps, or ``sweeps`` sweeps have run. Keeps the set with the
    best score over all pairs.
    """
    centers = hash_centers(num_classes, bits, "hadamard", seed).double()
    if num_classes < 2:
        return centers.float()
    target = gilbert_varshamov_distance(bits, num_classes)
    best, best_score = centers.clone(), separation_score(pairwise_distances(centers))
    for _ in range(sweeps):
        if pairwise_distances(centers).min() >= target:
            break
        changed = False
        for i in range(num_classes):
            others = torch.cat([centers[:i], centers[i + 1 :]])
            while True:
                distances = (bits - others @ centers[i]) / 2  # (C − 1,)
                flipped = distances[:, None] + others * centers[i]  # column k: distances after flipping bit k
                gains = separation_score(flipped.T) - separation_score(distances)
                k = int(gains.argmax())
                if gains[k] <= 1e-9:
                    break
                centers[i, k] = -centers[i, k]
                changed = True
        score = separation_score(pairwise_distances(centers))
        if score > best_score:
            best, best_score = centers.clone(), score
        if not changed:
            break
    return best.float()


def softmax_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """``−mean_{i,c} [y_ic log p_ic + (1 − y_ic) log(1 − p_ic)]``, ``p = softmax(logits)`` over the C classes.

    ``log(1 − p_ic)`` is computed as ``logsumexp_{c'≠c} z_ic' − logsumexp_c' z_ic'`` (no cancellation).
    ``logits``, ``labels`` ``(N, C)``; C ≥ 2.
    """
    log_p = F.log_softmax(logits, dim=1)
    eye = torch.eye(logits.shape[1], dtype=torch.bool, device=logits.device)
    others = logits[:, None, :].masked_fill(eye, float("-inf"))  # (N, C, C): row c without class c
    log_not_p = torch.logsumexp(others, dim=2) - torch.logsumexp(logits, dim=1, keepdim=True)
    y = labels.to(logits.dtype)
    return -(y * log_p + (1 - y) * log_not_p).mean()


class MDSH(PairwiseLoss):
    """``BCE(softmax_c(√m·cos(h, c_c)), y)`` per (sample, class), mean over both, against centres c kept
    at least the Gilbert–Varshamov distance apart; from epoch ``pair_start_epoch`` on, plus
    ``β·mean_{j: y_i·y_j>0} log(1 + exp(½(1 − cos(h_i, b_j))))`` over the positives j in the bank b of
    every training code.

    Centres ``(C, m)``: :func:`separated_centers`, computed once in :meth:`setup` (a buffer). The
    authors optimise each centre with an ℓp-box ADMM on the same score (mean + min − var of its
    distances) offline; this is a deterministic bit-flip search for it, which keeps Hadamard
    centres when they already meet the target (C ≤ 2m). Multi-label data: y multi-hot, as the paper.

    The authors' network ends with Linear + BatchNorm + tanh (head ``batch_norm: true, activation:
    tanh``); their bank holds a momentum (MoCo) encoder's codes, here the network's own detached
    codes (updated every step, gathered across DDP ranks).

    Terms: ``similarity``, ``pair`` (β times the pair term; 0 before ``pair_start_epoch``) and
    ``quantization`` = :class:`~hashbench.quantizers.original_extra.UnitL2` on h, ``mean((|h| − 1)²)``
    (λ = 1e-4 goes in ``quantization_weight``).

    Args:
        beta: β, weight of the pair term (1).
        pair_start_epoch: first epoch (from 0) with the pair term (9, the authors' ``epoch_change``).
        seed: seed of the initial centres (used when m is not a power of 2 or C > 2m).
        sweeps: at most this many sweeps of the centre search.
    """

    centers: Tensor

    def __init__(self, beta: float = 1.0, pair_start_epoch: int = 9, seed: int = 0, sweeps: int = 50) -> None:
        super().__init__(bank=True)
        if beta < 0 or pair_start_epoch < 0 or sweeps < 0:
            raise ValueError(
                f"MDSH needs beta, pair_start_epoch, sweeps >= 0; got {beta}, {pair_start_epoch}, {sweeps}"
            )
        self.beta = beta
        self.pair_start_epoch = pair_start_epoch
        self.seed = seed
        self.sweeps = sweeps
        self.pairs_on = pair_start_epoch == 0
        self.original_quantization = UnitL2()

    def allocate(self, context: TrainingContext) -> None:
        if context.num_classes < 2:
            raise ValueError("MDSH's softmax over class centres needs at least 2 classes")
        self.code_bank = CodeBank(context.num_train, context.bits, context.num_classes)
        centers = separated_centers(context.num_classes, context.bits, self.seed, self.sweeps)
        self.register_buffer("centers", centers)

    def on_train_epoch_start(self, epoch: int) -> None:
        self.pairs_on = epoch >= self.pair_start_epoch

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        centers = require_setup(self, getattr(self, "centers", None)).to(h.dtype)
        cos = F.normalize(h, dim=1) @ F.normalize(centers, dim=1).T
        similarity = softmax_bce(math.sqrt(h.shape[1]) * cos, labels)
        rows, row_labels, columns, column_labels = self.pairs(h, labels, indices)
        pair = h.new_zeros(())
        if self.pairs_on:
            positive = similarity_matrix(row_labels, column_labels) > 0
            cos_bank = F.normalize(rows, dim=1) @ F.normalize(columns, dim=1).T
            cost = F.softplus(0.5 * (1 - cos_bank))
            pair = torch.where(positive, cost, torch.zeros_like(cost)).sum() / positive.sum().clamp_min(1)
        return {
            "similarity": similarity,
            "pair": self.beta * pair,
            "quantization": self.original_quantization(h),
        }
