"""Retrieval metrics for binary codes, with exact and documented conventions (``docs/protocols.md`` §1).

* Codes: ±1 / continuous real ``(N, m)`` (entries >= 0 are +1, so sign(0) = +1) or bit-packed uint8
  ``(N, ceil(m/8))`` (MSB first, as ``numpy.packbits``) with ``bits=m``. Labels: ``(N, C)`` multi-hot
  or ``(N,)`` class indices; relevant = at least one shared label.
* Ranking by ascending Hamming distance; ties by database index ascending (``ties="index"``), or the
  exact expectation over all orders of tied items (``ties="expected"``, tie-aware AP).
* mAP@K: ``AP_q = (1/R_q) Σ_{k<=K} P_q(k) rel_k``, ``R_q`` = relevant items in the top K, ``AP_q = 0``
  when ``R_q = 0``, mean over all queries; ``top_k=None`` is K = N; K > N is clamped to N.
* P@k likewise; P@H<=r is the precision of the Hamming ball (0 for an empty ball, mean over all
  queries); the PR curve over radius 0..m is micro-averaged (pairs pooled over queries).
* Multi-label, graded relevance ``r = y_q · y_x``: ACG@K, NDCG@K, WAP@K (``graded_metrics``).
* ``RetrievalMetric``: torchmetrics ``Metric`` for DDP (packed ``cat`` states, de-duplicated by index).
  It and ``dedup_by_index`` are imported on first use (module ``__getattr__``), so that
  ``import hashbench.metrics`` does not import torchmetrics (seconds) for the functional metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hashbench.metrics.diagnostics import (
    bit_balance,
    bit_correlation,
    bit_entropy,
    code_usage,
    quantization_angles,
    quantization_error,
)
from hashbench.metrics.functional import (
    graded_metrics,
    mean_average_precision,
    pr_curve,
    precision_at_k,
    precision_within_radius,
    rank,
)
from hashbench.metrics.packing import hamming_distance, pack_codes, unpack_codes
from hashbench.metrics.ranking import RankingResult

if TYPE_CHECKING:
    from hashbench.metrics.retrieval import RetrievalMetric, dedup_by_index

_LAZY = ("RetrievalMetric", "dedup_by_index")  # from hashbench.metrics.retrieval (imports torchmetrics)

__all__ = [
    "RankingResult",
    "RetrievalMetric",
    "bit_balance",
    "bit_correlation",
    "bit_entropy",
    "code_usage",
    "dedup_by_index",
    "graded_metrics",
    "hamming_distance",
    "mean_average_precision",
    "pack_codes",
    "pr_curve",
    "precision_at_k",
    "precision_within_radius",
    "quantization_angles",
    "quantization_error",
    "rank",
    "unpack_codes",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hashbench.metrics import retrieval

        return getattr(retrieval, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
