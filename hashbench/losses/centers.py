"""Class hash centres / codebooks (CSQ, DPN, OrthoHash): Hadamard rows or well-separated random ±1 rows,
and the base of the losses that pull each code to its label's centre (CSQ, DPN)."""

from __future__ import annotations

from typing import Literal

import scipy.linalg
import torch
from torch import Tensor

from hashbench.losses.base import HashLoss, TrainingContext, require_setup

CenterMethod = Literal["hadamard", "balanced", "bernoulli"]


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def hadamard(n: int) -> Tensor:
    """Sylvester's Hadamard matrix ``(n, n)`` of ±1 (float32) with orthogonal rows; ``n`` a power of 2."""
    if not is_power_of_two(n):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power of 2, got {n}")
    return torch.from_numpy(scipy.linalg.hadamard(n)).float()


def balanced_centers(num_classes: int, bits: int, generator: torch.Generator, pool: int = 256) -> Tensor:
    """``(C, m)`` random ±1 rows with ⌊m/2⌋ entries −1 each, kept far apart in Hamming distance.

    Greedy farthest-point selection: each row is the one of ``pool`` fresh balanced candidates whose
    smallest Hamming distance to the rows chosen so far is largest (CSQ redraws whole sets until
    the minimum distance exceeds m/4; this reaches that or better with one pass).
    """
    chosen = torch.empty(0, bits)
    for _ in range(num_classes):
        keys = torch.rand(pool, bits, generator=generator)
        candidates = torch.ones(pool, bits)
        candidates.scatter_(1, keys.argsort(dim=1)[:, : bits // 2], -1.0)
        if len(chosen) == 0:
            best = candidates[0]
        else:
            distance = (bits - candidates @ chosen.T) / 2  # (pool, chosen)
            score = distance.min(dim=1).values * (bits + 1) + distance.mean(dim=1)  # min first, then mean
            best = candidates[score.argmax()]
        chosen = torch.cat([chosen, best[None]])
    return chosen


def hash_centers(num_classes: int, bits: int, method: CenterMethod = "hadamard", seed: int = 0) -> Tensor:
    """``(C, m)`` ±1 class centres, deterministic given ``seed`` (so every DDP rank builds the same ones).

    * ``hadamard`` (CSQ): the first C rows of ``[H_m; −H_m]`` when m is a power of 2 and C ≤ 2m
      (pairwise distance m/2, or m for a row and its negation); otherwise :func:`balanced_centers`.
    * ``balanced``: :func:`balanced_centers` (DPN's random bit-balanced targets, kept apart).
    * ``bernoulli`` (OrthoHash's default codebook): i.i.d. ±1 entries with probability ½.
    """
    if num_classes < 1 or bits < 1:
        raise ValueError(f"need num_classes >= 1 and bits >= 1, got {num_classes} and {bits}")
    generator = torch.Generator().manual_seed(seed)
    if method == "hadamard" and is_power_of_two(bits) and num_classes <= 2 * bits:
        h = hadamard(bits)
        return torch.cat([h, -h])[:num_classes].clone()
    if method == "bernoulli":
        return torch.randint(0, 2, (num_classes, bits), generator=generator).float() * 2 - 1
    return balanced_centers(num_classes, bits, generator)


def label_centers(labels: Tensor, centers: Tensor, tie_breaker: Tensor) -> Tensor:
    """Target code of each sample ``(N, m)``: its class centre, or for multi-hot labels the sign of the
    sum of its classes' centres, with zero sums set from the fixed ±1 ``tie_breaker`` ``(m,)`` (CSQ, DPN).

    ``labels`` ``(N, C)`` multi-hot, ``centers`` ``(C, m)``.
    """
    total = labels.to(centers.dtype) @ centers
    return torch.where(total > 0, 1.0, torch.where(total < 0, -1.0, tie_breaker)).to(centers.dtype)


class CenterLoss(HashLoss):
    """Base of the losses that pull each code to a target built from class centres (CSQ, DPN).

    Centres (C, m) from :func:`hash_centers` with the subclass's ``center_method``, and a ±1
    tie-breaker (m,) for multi-label samples (:func:`label_centers`); both are buffers built from
    ``seed`` (the same on every DDP rank, checkpointed).

    Args:
        seed: seed of the centres and of the multi-label tie-breaker.
    """

    #: how the centres are built
    center_method: CenterMethod = "hadamard"
    centers: Tensor
    tie_breaker: Tensor

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed

    def allocate(self, context: TrainingContext) -> None:
        centers = hash_centers(context.num_classes, context.bits, self.center_method, self.seed)
        self.register_buffer("centers", centers)
        generator = torch.Generator().manual_seed(self.seed + 1)
        tie_breaker = torch.randint(0, 2, (context.bits,), generator=generator) * 2.0 - 1
        self.register_buffer("tie_breaker", tie_breaker)

    def targets(self, labels: Tensor, dtype: torch.dtype) -> Tensor:
        """Each sample's target code ``(N, m)`` in ``dtype`` from its multi-hot ``labels`` ``(N, C)``."""
        centers = require_setup(self, getattr(self, "centers", None))
        return label_centers(labels, centers, self.tie_breaker).to(dtype)
