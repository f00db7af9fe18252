"""``RetrievalMetric``: a torchmetrics ``Metric`` for Hamming-ranking retrieval under DDP."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from hashbench.metrics.diagnostics import (
    bit_balance,
    bit_correlation,
    code_usage,
    entropy_of_balance,
    quantization_angles,
)
from hashbench.metrics.functional import (
    graded_from,
    map_from,
    pr_from,
    precision_at_k_from,
    radius_stats_from,
)
from hashbench.metrics.packing import pack_codes
from hashbench.metrics.ranking import Engine, Ties, ranking_pass

__all__ = ["RetrievalMetric", "dedup_by_index"]

_ROLES = ("query", "database")


def dedup_by_index(index: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    """Keep the first occurrence of each index (in the given order), then sort by index.

    DistributedSampler pads the last shard by repeating indices; after an all-gather the padded copies
    appear twice. Returns ``(index, *values)`` restricted and reordered accordingly.
    """
    order = torch.sort(index, stable=True).indices
    idx = index[order]
    keep = torch.ones_like(idx, dtype=torch.bool)
    keep[1:] = idx[1:] != idx[:-1]
    order = order[keep]
    return (index[order], *(v[order] for v in values))


class RetrievalMetric(Metric):
    """Hamming-ranking retrieval metrics and code diagnostics from one ranking pass.

    ``update(h, labels, indices, role)`` stores, per role, the sign of the codes bit-packed (uint8),
    the labels (uint8 multi-hot) and the dataset indices, all as ``dist_reduce_fx="cat"`` states; for
    the database also the per-item quantization angle of the continuous codes. ``compute()`` gathers,
    drops duplicate indices (first occurrence wins), sorts by index and returns a dict of 0-d tensors
    (``mAP@K``, ``P@k``, ``P@H<=r``, ``empty_ball@H<=r``, diagnostics) and 1-D ``curve/...`` tensors.

    Direction per key (``higher_is_better`` is ``None``: the keys differ): higher is better for
    ``mAP@K``, ``P@k``, ``P@H<=r``, ``bit_entropy`` and ``code_usage``; lower for ``empty_ball@H<=r``,
    ``quantization_error`` and ``bit_correlation``. ``engine`` and ``ties``: as in
    :func:`hashbench.metrics.rank`.

    ``multi_label=True`` adds the graded-relevance figures of multi-label retrieval (grade = number of
    shared labels, ties by index; :func:`hashbench.metrics.graded_metrics`): ``ACG@K``, ``NDCG@K`` and
    ``WAP@K`` (higher is better), computed in the same ranking pass; it needs ``ties="index"``.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(
        self,
        bits: int,
        top_k: int | None,
        precision_k: int = 1000,
        radius: int = 2,
        ties: Ties = "index",
        engine: Engine = "auto",
        multi_label: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if ties not in ("index", "expected"):
            raise ValueError(f"ties must be 'index' or 'expected', got {ties!r}")
        if engine not in ("auto", "compiled", "torch"):
            raise ValueError(f"engine must be 'auto', 'compiled' or 'torch', got {engine!r}")
        if multi_label and ties != "index":
            raise ValueError("multi_label=True (ACG, NDCG, WAP) ranks with ties by index: use ties='index'")
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self.bits = int(bits)
        self.top_k = None if top_k is None else int(top_k)
        self.precision_k = int(precision_k)
        self.radius = int(radius)
        self.ties: Ties = ties
        self.engine: Engine = engine
        self.multi_label = bool(multi_label)
        for role in _ROLES:
            self.add_state(f"{role}_codes", default=[], dist_reduce_fx="cat")
            self.add_state(f"{role}_labels", default=[], dist_reduce_fx="cat")
            self.add_state(f"{role}_index", default=[], dist_reduce_fx="cat")
        self.add_state("database_angle", default=[], dist_reduce_fx="cat")

    @property
    def map_key(self) -> str:
        return f"mAP@{self._k_name}"

    @property
    def _k_name(self) -> str:
        return "all" if self.top_k is None else str(self.top_k)

    def update(self, h: Tensor, labels: Tensor, indices: Tensor, role: str) -> None:
        if role not in _ROLES:
            raise ValueError(f"role must be 'query' or 'database', got {role!r}")
        if h.dim() != 2 or h.shape[1] != self.bits:
            raise ValueError(f"h must be (N, bits={self.bits}), got {tuple(h.shape)}")
        if labels.dim() == 1:
            raise ValueError("labels must be (N, C) multi-hot")
        if labels.shape[0] != h.shape[0] or indices.reshape(-1).shape[0] != h.shape[0]:
            raise ValueError("h, labels and indices must have the same number of rows")
        h = h.detach()
        self._state(f"{role}_codes").append(pack_codes(h))
        self._state(f"{role}_labels").append((labels.detach() != 0).to(torch.uint8))
        self._state(f"{role}_index").append(indices.detach().reshape(-1).long())
        if role == "database":
            self._state("database_angle").append(quantization_angles(h))

    def _state(self, name: str) -> list[Tensor]:
        """A ``cat`` state: a list of tensors until ``compute()`` gathers it (a tensor under DDP)."""
        return getattr(self, name)

    def _gathered(self, role: str) -> tuple[Tensor, Tensor, Tensor]:
        states = self._state(f"{role}_codes")
        if isinstance(states, list) and len(states) == 0:
            raise ValueError(
                f"RetrievalMetric received no {role} data: call update(..., role={role!r}) first"
            )
        codes = dim_zero_cat(states)
        labels = dim_zero_cat(self._state(f"{role}_labels"))
        index = dim_zero_cat(self._state(f"{role}_index"))
        if codes.shape[0] == 0:
            raise ValueError(f"RetrievalMetric received no {role} data")
        return index, codes, labels

    def compute(self) -> dict[str, Tensor]:
        q_index, q_codes, q_labels = self._gathered("query")
        x_index, x_codes, x_labels = self._gathered("database")
        angles = dim_zero_cat(self._state("database_angle"))
        _, q_codes, q_labels = dedup_by_index(q_index, q_codes, q_labels)
        _, x_codes, x_labels, angles = dedup_by_index(x_index, x_codes, x_labels, angles)

        res = ranking_pass(
            q_codes,
            q_labels,
            x_codes,
            x_labels,
            single=False,
            bits=self.bits,
            top_k=self.top_k,
            precision_k=self.precision_k,
            ties=self.ties,
            engine=self.engine,
            graded=self.multi_label,
        )
        p_r, empty = radius_stats_from(res, self.radius)
        pr_p, pr_r = pr_from(res)
        pooled = res.hist.sum(0)
        balance = bit_balance(x_codes, self.bits)
        out = {
            self.map_key: map_from(res),
            f"P@{self.precision_k}": precision_at_k_from(res),
            f"P@H<={self.radius}": p_r,
            f"empty_ball@H<={self.radius}": empty,
            "quantization_error": angles.float().mean(),
            "bit_entropy": entropy_of_balance(balance),
            "bit_correlation": bit_correlation(x_codes, self.bits),
            "code_usage": code_usage(x_codes, self.bits),
            "curve/pr_precision": pr_p,
            "curve/pr_recall": pr_r,
            "curve/bit_balance": balance,
            "curve/hamming_hist_relevant": pooled[:, 1],
            "curve/hamming_hist_irrelevant": pooled[:, 0],
        }
        if self.multi_label:
            acg, ndcg, wap = graded_from(res)
            out.update({f"ACG@{self._k_name}": acg, f"NDCG@{self._k_name}": ndcg, f"WAP@{self._k_name}": wap})
        return out
