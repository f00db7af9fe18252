"""Public functional retrieval metrics (Hamming ranking). Conventions: ``docs/protocols.md`` §1.

Codes: ±1 (or continuous) real tensors ``(N, m)`` — entries >= 0 count as +1 — or bit-packed uint8
``(N, ceil(m/8))`` with ``bits=m``. Labels: ``(N, C)`` 0/1 multi-hot or ``(N,)`` integer classes;
relevant means sharing at least one label. Database items at equal distance are ordered by database
index ascending (``ties="index"``), or averaged over all their orders (``ties="expected"``).
``engine`` picks the ranking engine: ``"auto"`` (compiled on CPU, torch elsewhere), ``"compiled"`` or
``"torch"``; both give the same figures (``hashbench.metrics.ranking``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.metrics.packing import as_packed, normalize_labels
from hashbench.metrics.ranking import Engine, RankingResult, Ties, ranking_pass

__all__ = [
    "graded_metrics",
    "mean_average_precision",
    "pr_curve",
    "precision_at_k",
    "precision_within_radius",
    "rank",
]


def rank(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    precision_k: int = 1000,
    ties: Ties = "index",
    bits: int | None = None,
    engine: Engine = "auto",
    graded: bool = False,
) -> RankingResult:
    """One ranking pass over the database for all queries (the engine behind every metric here);
    ``graded``: also ACG, NDCG and WAP at ``top_k`` (multi-hot labels, ``ties="index"``)."""
    q, m = as_packed(query_codes, bits)
    x, mx = as_packed(database_codes, bits if bits is not None else m)
    if m != mx:
        raise ValueError(f"query codes have {m} bits, database codes {mx}")
    yq, yx, single = normalize_labels(query_labels, database_labels)
    if yq.shape[0] != q.shape[0] or yx.shape[0] != x.shape[0]:
        raise ValueError("codes and labels must have the same number of rows")
    x, yq, yx = x.to(q.device), yq.to(q.device), yx.to(q.device)
    return ranking_pass(q, yq, x, yx, single, m, top_k, precision_k, ties, engine=engine, graded=graded)


def graded_from(result: RankingResult) -> tuple[Tensor, Tensor, Tensor]:
    """Means over queries of ACG, NDCG and WAP (float32) of a ``graded`` ranking pass."""
    if result.acg is None or result.ndcg is None or result.wap is None:
        raise ValueError("the ranking pass was run without graded=True")
    return result.acg.mean().float(), result.ndcg.mean().float(), result.wap.mean().float()


def map_from(result: RankingResult) -> Tensor:
    return result.ap.mean().float()


def precision_at_k_from(result: RankingResult) -> Tensor:
    return (result.hits / result.precision_k).mean().float()


def radius_stats_from(result: RankingResult, radius: int) -> tuple[Tensor, Tensor]:
    """(mean precision within Hamming radius, fraction of queries with an empty ball)."""
    r = max(0, min(int(radius), result.bits))
    cum = result.hist[:, : r + 1].sum(1)  # (Q, 2)
    ball = cum.sum(1)
    prec = torch.where(ball > 0, cum[:, 1].double() / ball.clamp(min=1), 0.0)
    return prec.mean().float(), (ball == 0).double().mean().float()


def pr_from(result: RankingResult) -> tuple[Tensor, Tensor]:
    """Micro-averaged precision and recall of the Hamming ball, radius 0..m (pairs pooled over queries)."""
    pooled = result.hist.sum(0)  # (m+1, 2)
    cum = torch.cumsum(pooled, 0).double()
    retrieved = cum.sum(1)
    relevant_total = pooled[:, 1].sum().double()
    precision = torch.where(retrieved > 0, cum[:, 1] / retrieved.clamp(min=1), 0.0)
    recall = cum[:, 1] / relevant_total if relevant_total > 0 else torch.zeros_like(precision)
    return precision.float(), recall.float()


def mean_average_precision(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    ties: Ties = "index",
    bits: int | None = None,
    engine: Engine = "auto",
) -> Tensor:
    """mAP@K: ``AP_q = (1/R_q) Σ_{k<=K} P_q(k) rel_k`` with ``R_q`` the relevant items in the top K,
    ``AP_q = 0`` if ``R_q = 0``, mean over all queries. ``top_k=None``: K = database size (also the clamp).
    """
    res = rank(query_codes, query_labels, database_codes, database_labels, top_k, 1, ties, bits, engine)
    return map_from(res)


def graded_metrics(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    bits: int | None = None,
    engine: Engine = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Multi-label retrieval with graded relevance ``r = y_q · y_x`` (shared labels), ties by index:
    ``(ACG@K, NDCG@K, WAP@K)``, each the mean over all queries (float32 0-d). Labels: ``(N, C)`` multi-hot.

    Definitions (Zhao et al., CVPR 2015, as ``hashbench.metrics.ranking``): ``ACG@K = (1/K) Σ_{k<=K} r_k``;
    ``NDCG@K = DCG@K / IDCG@K`` with ``DCG@K = Σ_{k<=K} (2^{r_k} - 1)/log2(1+k)`` and IDCG@K from the whole
    database sorted by grade (NDCG 0 for a query sharing no label with the database);
    ``WAP@K = (1/R) Σ_{k<=K} rel_k ACG@k`` with ``R`` the relevant items in the top K (0 if none).
    ``top_k=None``: K = database size (also the clamp).
    """
    res = rank(
        query_codes, query_labels, database_codes, database_labels, top_k, 1, "index", bits, engine, True
    )
    return graded_from(res)


def precision_at_k(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    k: int = 1000,
    ties: Ties = "index",
    bits: int | None = None,
    engine: Engine = "auto",
) -> Tensor:
    """P@k: relevant items among the top k (k clamped to the database size) over k, mean over queries."""
    res = rank(query_codes, query_labels, database_codes, database_labels, k, k, ties, bits, engine)
    return precision_at_k_from(res)


def precision_within_radius(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    radius: int = 2,
    bits: int | None = None,
    return_empty_fraction: bool = False,
    engine: Engine = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """Mean over queries of the precision of the Hamming ball ``{x : d(q, x) <= radius}``.

    A query whose ball is empty counts as 0. With ``return_empty_fraction=True`` also returns the
    fraction of queries with an empty ball.
    """
    res = rank(query_codes, query_labels, database_codes, database_labels, 1, 1, "expected", bits, engine)
    prec, empty = radius_stats_from(res, radius)
    return (prec, empty) if return_empty_fraction else prec


def pr_curve(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    bits: int | None = None,
    engine: Engine = "auto",
) -> tuple[Tensor, Tensor]:
    """Precision and recall of the Hamming ball for radius ``0..m`` (each of length ``m+1``).

    Micro-averaged: relevant retrieved pairs, retrieved pairs and relevant pairs are summed over all
    queries before dividing. Precision at a radius where nothing at all is retrieved is 0; recall is 0
    when no query has any relevant item.
    """
    res = rank(query_codes, query_labels, database_codes, database_labels, 1, 1, "expected", bits, engine)
    return pr_from(res)
