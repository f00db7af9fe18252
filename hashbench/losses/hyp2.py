"""HyP² (Xu et al., ACM MM 2022): a hybrid proxy-pair loss on a hypersphere, for multi-label retrieval."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import full_precision
from hashbench.losses.proxies import ProxyLoss


def code_distance_bound(bits: int, dimension: int) -> int:
    """The largest d with ``Σ_{i<k} ⌈d/2^i⌉ ≤ m`` (the Griesmer bound): no binary linear code of length m
    and dimension k has a larger minimum Hamming distance. ``bits`` = m ≥ 1, ``dimension`` = k ≥ 1."""
    if bits < 1 or dimension < 1:
        raise ValueError(f"need bits >= 1 and dimension >= 1, got {bits} and {dimension}")
    d = 0
    while d < bits and sum(math.ceil((d + 1) / 2**i) for i in range(dimension)) <= bits:
        d += 1
    return d


def hyp2_threshold(bits: int, num_classes: int) -> float:
    """δ = 1 − 2d/m: the cosine of two codes at distance d, d = :func:`code_distance_bound` (m,
    ⌈log₂ C⌉), how far apart C codewords of m bits can be (C = 1 is taken as k = 1)."""
    dimension = max(1, math.ceil(math.log2(num_classes)))
    return 1 - 2 * code_distance_bound(bits, dimension) / bits


class HyP2(ProxyLoss):
    """Proxy term ``mean_{y_ic=1}(1 − cos(u_i, p_c)) + mean_{y_ic=0} relu(cos(u_i, p_c) − δ)`` (means over the
    positive and the negative (sample, class) entries of the batch) plus the pair term
    ``β·mean_{(i,j): y_i·y_j=0} relu(cos(u_i, u_j) − δ)`` over label-disjoint pairs of the batch.

    Learnable proxies p ``(C, m)``, initialised ``kaiming_normal_(mode="fan_out")`` from ``seed``,
    train with the head's learning rate (the authors give them their own rate, 0.02 with SGD). The
    loss sees the raw output u (the authors' head has no activation: head ``activation: identity``;
    codes are sign(u)). Only directions matter.

    δ: ``threshold``, or by default ``1 − 2d/m`` with d the Griesmer bound for a binary code of length
    m and dimension ⌈log₂ C⌉ (:func:`hyp2_threshold`; 0 for C = 10 at 32 bits). The authors read d from
    their table of best *known* codes (``codetable.xlsx``), which often equals the bound but is lower
    where the bound is not attained (32 bits, 80–100 classes: d = 14 there, 15 here, δ = 0.125
    against 0.0625; 12 bits, 21 classes: δ = 0.333 against 0.167); pass ``threshold`` to use the
    table's value. In the authors' code the pair term only pairs samples
    with two labels or more (``pair_samples: multi_label``, the default; on single-label data it is
    then 0); ``all`` pairs every label-disjoint pair of the batch.

    Terms: ``similarity`` (the proxy term) and ``pair`` (β times the pair term). No quantization
    term of its own: with ``quantizer: original`` there is none, and plug-ins apply directly.

    Args:
        beta: β, weight of the pair term (0.5).
        threshold: δ; ``None`` = :func:`hyp2_threshold` (bits, classes).
        pair_samples: ``multi_label`` (samples with ≥ 2 labels, the authors' code) or ``all``.
        seed: seed of the proxies' initialisation.
    """

    def __init__(
        self,
        beta: float = 0.5,
        threshold: float | None = None,
        pair_samples: Literal["multi_label", "all"] = "multi_label",
        seed: int = 0,
    ) -> None:
        super().__init__(init="kaiming_fan_out", seed=seed)
        if beta < 0:
            raise ValueError(f"HyP2 needs beta >= 0, got {beta}")
        if threshold is not None and not -1 <= threshold <= 1:
            raise ValueError(f"HyP2 threshold is a cosine in [-1, 1], got {threshold}")
        self.beta = beta
        self.threshold = threshold
        self.pair_samples = pair_samples

    def delta(self, bits: int) -> float:
        """δ for ``bits``-bit codes: the configured threshold or :func:`hyp2_threshold`."""
        if self.threshold is not None:
            return self.threshold
        num_classes = len(self.proxies) if self.proxies is not None else 1
        return hyp2_threshold(bits, num_classes)

    @full_precision
    def forward(self, u: Tensor, h: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        cos = self.proxy_cosines(u)
        delta = self.delta(u.shape[1])
        positive = labels > 0
        proxy = masked_mean(1 - cos, positive) + masked_mean(F.relu(cos - delta), ~positive)
        keep = positive.sum(dim=1) >= (2 if self.pair_samples == "multi_label" else 0)
        y = labels[keep].to(u.dtype)
        x = F.normalize(u[keep], dim=1)
        disjoint = (y @ y.T) == 0
        disjoint.fill_diagonal_(False)  # a sample without labels is not its own irrelevant pair
        pair = masked_mean(F.relu(x @ x.T - delta), disjoint)
        return {"similarity": proxy, "pair": self.beta * pair}


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (with a gradient path) when it is nowhere true."""
    count = mask.sum()
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count.clamp_min(1)
