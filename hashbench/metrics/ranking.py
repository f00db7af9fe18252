"""The single ranking pass from which every retrieval figure is computed, and tie-aware AP.

Per query, the pass yields the histogram of the database by Hamming distance ``d`` and relevance
(``hist[q, d, 0/1]``: irrelevant / relevant items at distance ``d``) and, with ``ties="index"``, the
exact AP@K and hits@k of the ranking by ascending distance with ties broken by database index.
Everything else follows from the histogram: P@H≤r, the PR curve, and tie-aware AP (``ties="expected"``,
closed form per distance bucket, below).

With ``graded=True`` (multi-hot labels, ties by index), the same pass grades each item by the number of
labels it shares with the query, ``r = y_q · y_x``, and yields the graded-relevance figures of
Zhao et al., "Deep Semantic Ranking Based Hashing for Multi-Label Image Retrieval" (CVPR 2015, Sec. 4),
with ``r_k`` the grade of the item at rank ``k``:

* ``ACG@K = (1/K) Σ_{k<=K} r_k`` (average cumulative gain);
* ``NDCG@K = DCG@K / IDCG@K``, ``DCG@K = Σ_{k<=K} (2^{r_k} - 1) / log2(1 + k)``, IDCG@K the DCG of the
  whole database sorted by grade (0 when no item shares a label);
* ``WAP@K = (1/R) Σ_{k<=K} rel_k · ACG@k``, ``R`` = relevant (``r > 0``) items in the top K, 0 if ``R = 0``.

IDCG needs only each query's histogram of grades over the database (``C + 1`` bins), counted in the pass.

Two exact engines (``engine="auto"`` picks by device and size):

* ``"compiled"`` (CPU): a compiled (numba) popcount loop over bit-packed codes, two linear scans per
  query and no sort (``ranking_cpu.py``): within a distance bucket the database order *is* the tie
  order, so a running count per distance gives every item's rank. Tie-aware AP is computed there too,
  per query from its histogram row: memory O(N) per thread for both tie rules.
* ``"torch"`` (CUDA and other devices, and small CPU problems): dense torch ops (``ranking_torch.py``):
  a float64 GEMM of ±1 codes for the distances and ``topk`` on the composite key ``d·N + index``;
  tie-aware AP from the histograms by :func:`expected_ap` in chunks of queries.

The compiled engine costs about 0.6 s once per process (importing numba, loading the compiled code
from its cache); on the CPU, ``"auto"`` therefore ranks up to :data:`SMALL_PROBLEM_PAIRS` query-item
pairs with torch (about 10 ms for the digits demo's 200 × 800, one thread) and larger problems with the
compiled engine (100× faster than torch at 1,000 × 5,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from hashbench.metrics.packing import unpack_codes

__all__ = [
    "SMALL_PROBLEM_PAIRS",
    "Engine",
    "RankingResult",
    "Ties",
    "expected_ap",
    "expected_hits",
    "ideal_dcg",
    "ranking_pass",
]

Engine = Literal["auto", "compiled", "torch"]
Ties = Literal["index", "expected"]

# the compiled engine's limits: 2d + r fits 16 bits, ranks fit 31, and with grades, grade sums (N·C) 31
_COMPILED_MAX_BITS = 32766
_COMPILED_MAX_ITEMS = 2**31 - 1
_COMPILED_MAX_GRADE_SUM = 2**31 - 1
SMALL_PROBLEM_PAIRS = 1 << 18
"""On the CPU, ``engine="auto"`` ranks at most this many query-item pairs with torch (module docstring)."""
# tie-aware AP in torch: at most this many (query, j) elements per chunk of queries (j: the relevant
# count in the bucket cut by rank K), so memory stays bounded whatever Q and K
_EXPECTED_CHUNK_ELEMENTS = 1 << 20


@dataclass
class RankingResult:
    """Per-query outcome of one ranking pass.

    ``hist[q, d, 0/1]`` counts the irrelevant / relevant database items at Hamming distance ``d`` from
    query ``q``. ``ap`` is AP@top_k and ``hits`` the number of relevant items in the top ``precision_k``
    under the requested tie rule (for ``ties="expected"`` these are expectations). With ``graded``,
    ``acg``, ``ndcg`` and ``wap`` are ACG@top_k, NDCG@top_k and WAP@top_k ``(Q,)`` float64 (else None).
    """

    bits: int
    n_database: int
    top_k: int
    precision_k: int
    ties: str
    hist: Tensor
    ap: Tensor
    hits: Tensor
    acg: Tensor | None = None
    ndcg: Tensor | None = None
    wap: Tensor | None = None


def ranking_pass(
    query_packed: Tensor,
    query_labels: Tensor,
    database_packed: Tensor,
    database_labels: Tensor,
    single: bool,
    bits: int,
    top_k: int | None,
    precision_k: int,
    ties: Ties = "index",
    workers: int | None = None,
    engine: Engine = "auto",
    graded: bool = False,
) -> RankingResult:
    """Rank the database for every query (ascending Hamming distance) and collect statistics.

    Codes are bit-packed uint8 ``(Q, ceil(m/8))``/``(N, ceil(m/8))`` of ``bits = m``; labels are int64
    class indices (``single=True``) or 0/1 multi-hot ``(·, C)``. ``top_k=None`` means the whole
    database; ``top_k`` and ``precision_k`` are clamped to ``[1, N]``. On CPU, chunks of queries run
    on ``workers`` threads (default ``torch.get_num_threads()``). ``engine``: ``"compiled"`` (CPU
    tensors only), ``"torch"`` (any device) or ``"auto"``: compiled on CPU within its limits (m <= 32766,
    N < 2^31) above :data:`SMALL_PROBLEM_PAIRS` query-item pairs, torch elsewhere. Both give the same
    figures. ``graded``: also ACG, NDCG and WAP at
    ``top_k`` (needs multi-hot labels and ``ties="index"``).
    """
    if ties not in ("index", "expected"):
        raise ValueError(f"ties must be 'index' or 'expected', got {ties!r}")
    if (top_k is not None and top_k < 1) or precision_k < 1:
        raise ValueError(f"top_k and precision_k must be >= 1, got {top_k} and {precision_k}")
    q_n, n = query_packed.shape[0], database_packed.shape[0]
    if q_n == 0 or n == 0:
        raise ValueError("need at least one query and one database item")
    k = n if top_k is None else max(1, min(int(top_k), n))
    pk = max(1, min(int(precision_k), n))
    device = query_packed.device
    if graded and (single or ties != "index"):
        raise ValueError(
            "graded metrics (ACG, NDCG, WAP) need multi-hot (N, C) labels and ties='index', "
            f"got {'class indices' if single else 'multi-hot labels'} and ties={ties!r}"
        )
    if engine not in ("auto", "compiled", "torch"):
        raise ValueError(f"engine must be 'auto', 'compiled' or 'torch', got {engine!r}")
    fits = bits <= _COMPILED_MAX_BITS and n <= _COMPILED_MAX_ITEMS
    if graded:
        fits = fits and n * database_labels.shape[1] <= _COMPILED_MAX_GRADE_SUM
    if engine == "compiled" and (device.type != "cpu" or not fits):
        raise ValueError(
            f"engine='compiled' needs CPU tensors, at most {_COMPILED_MAX_BITS} bits and fewer than 2^31 "
            f"database items (with graded metrics, items × classes < 2^31) (got {device.type}, {bits} bits, "
            f"{n} items): use engine='torch' or 'auto'"
        )
    if engine == "auto":
        large = q_n * n > SMALL_PROBLEM_PAIRS
        engine = "compiled" if device.type == "cpu" and fits and large else "torch"
    if engine == "compiled":
        from hashbench.metrics.ranking_cpu import rank_cpu

        workers = torch.get_num_threads() if workers is None else workers
        hist, ap, hits, gout, ghist = rank_cpu(
            query_packed, query_labels, database_packed, database_labels, single, bits, k, pk,
            ties == "index", workers, graded,
        )  # fmt: skip
    else:
        from hashbench.metrics.ranking_torch import rank_torch

        q = unpack_codes(query_packed, bits, torch.float64)
        x = unpack_codes(database_packed, bits, torch.float64)
        hist, ap, hits, gout, ghist = rank_torch(
            q, query_labels, x, database_labels, single, k, pk, ties == "index", graded
        )
        if ties == "expected":
            ap, hits = _expected_from_hist(hist, k, pk)
    result = RankingResult(bits, n, k, pk, ties, hist, ap, hits)
    if graded:
        idcg = ideal_dcg(ghist, k)
        result.acg = gout[:, 0] / k
        result.ndcg = torch.where(idcg > 0, gout[:, 1] / idcg.clamp(min=1), 0.0)
        result.wap = gout[:, 2]
    return result


def ideal_dcg(grade_hist: Tensor, k: int) -> Tensor:
    """IDCG@k per query from its histogram of grades ``(Q, C+1)`` (items sharing 0..C labels): the DCG of
    the database sorted by descending grade, where the items of grade ``g`` fill ranks ``s+1..e`` and add
    ``(2^g - 1) Σ_{s<i<=min(e,k)} 1/log2(1+i)``; float64 ``(Q,)``."""
    device = grade_hist.device
    g = torch.arange(grade_hist.shape[1], device=device, dtype=torch.float64)
    above = torch.flip(torch.cumsum(torch.flip(grade_hist, [1]), 1), [1]) - grade_hist  # items graded higher
    cum = torch.zeros(k + 1, dtype=torch.float64, device=device)  # Σ_{i<=j} 1/log2(1+i), j = 0..k
    cum[1:] = torch.cumsum(1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device)), 0)
    start, end = above.clamp(max=k), (above + grade_hist).clamp(max=k)
    return ((torch.exp2(g) - 1) * (cum[end] - cum[start])).sum(1)


# ----------------------------------------------------------------------------- tie-aware AP


def _expected_from_hist(hist: Tensor, k: int, pk: int) -> tuple[Tensor, Tensor]:
    """Tie-aware AP@k and hits@pk from the histograms ``(Q, m+1, 2)``, in chunks of queries."""
    n_d = hist.sum(2).double()
    r_d = hist[:, :, 1].double()
    harmonic = _harmonic(int(n_d[0].sum().item()), hist.device)
    dcut, _, t = _cut(n_d, k)
    j_max = int(torch.minimum(r_d.gather(1, dcut).squeeze(1), t).max().item())
    rows = max(1, _EXPECTED_CHUNK_ELEMENTS // (j_max + 1))
    ap = torch.cat(
        [expected_ap(n_d[s : s + rows], r_d[s : s + rows], k, harmonic) for s in range(0, len(n_d), rows)]
    )
    return ap, expected_hits(n_d, r_d, pk)


def _harmonic(n: int, device: torch.device) -> Tensor:
    """``H[i] = sum_{k=1..i} 1/k`` for ``i = 0..n`` in float64."""
    h = torch.zeros(n + 1, dtype=torch.float64, device=device)
    h[1:] = torch.cumsum(1.0 / torch.arange(1, n + 1, dtype=torch.float64, device=device), 0)
    return h


def _cut(n_d: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Bucket ``D`` holding rank ``k``; items before it ``nb``; how many of it are in the top k ``t``."""
    cum = torch.cumsum(n_d, 1)
    dcut = (cum < k).sum(1, keepdim=True)
    nb = torch.gather(cum - n_d, 1, dcut).squeeze(1)
    return dcut, nb, k - nb


def expected_hits(n_d: Tensor, r_d: Tensor, k: int) -> Tensor:
    """Expected relevant items in the top k over all orders of tied items."""
    dcut, _, t = _cut(n_d, k)
    rb = (torch.cumsum(r_d, 1) - r_d).gather(1, dcut).squeeze(1)
    n_cut = n_d.gather(1, dcut).squeeze(1)
    r_cut = r_d.gather(1, dcut).squeeze(1)
    return rb + t * r_cut / n_cut


def expected_ap(n_d: Tensor, r_d: Tensor, k: int, harmonic: Tensor) -> Tensor:
    """Tie-aware AP@k: the exact expectation of AP@k over all orders of items at equal distance.

    Per query, ``n_d``/``r_d`` are the numbers of items / relevant items at distance ``d`` (float64,
    shape ``(B, m+1)``). Buckets are ranked by distance; inside a bucket every order is equally likely.
    A bucket of ``n`` items (``r`` relevant) after ``nb`` items (``rb`` relevant) contributes, in
    expectation, ``(r/n) Σ_{p=1..n} (rb + 1 + (p-1)(r-1)/(n-1)) / (nb + p)``, which has a closed form in
    harmonic numbers (McSherry & Najork, ECIR 2008). The bucket cut by rank ``k`` takes ``t`` of its
    items; the number ``j`` of relevant ones among them is hypergeometric, and since AP@k divides by
    the relevant count in the top k (``rb + j``), the expectation is a sum over ``j``.
    """
    device = n_d.device
    cum_n = torch.cumsum(n_d, 1)
    nb_d = cum_n - n_d
    rb_d = torch.cumsum(r_d, 1) - r_d
    dcut, nb_cut, t = _cut(n_d, k)
    d_idx = torch.arange(n_d.shape[1], device=device)[None, :]
    full = d_idx < dcut

    def bucket_sum(nb: Tensor, rb: Tensor, size: Tensor, rel: Tensor) -> Tensor:
        # E[Σ_{relevant in the first `size` positions} (rb + s) / (nb + p)] given `rel` relevant there
        size_c = size.clamp(min=1)
        dh = harmonic[(nb + size).long()] - harmonic[nb.long()]
        frac = torch.where(size > 1, (rel - 1) / (size_c - 1).clamp(min=1), torch.zeros_like(rel))
        return (rel / size_c) * ((rb + 1) * dh + frac * (size - (nb + 1) * dh))

    a_full = torch.where(full & (n_d > 0), bucket_sum(nb_d, rb_d, n_d, r_d), 0.0).sum(1)
    n_cut = n_d.gather(1, dcut).squeeze(1)
    r_cut = r_d.gather(1, dcut).squeeze(1)
    rb_cut = rb_d.gather(1, dcut).squeeze(1)
    j_max = int(torch.minimum(r_cut, t).max().item())
    j = torch.arange(j_max + 1, device=device, dtype=torch.float64)[None, :]
    n_, r_, t_ = n_cut[:, None], r_cut[:, None], t[:, None]
    valid = (j <= torch.minimum(r_, t_)) & (j >= t_ - (n_ - r_))
    jc = torch.where(valid, j, torch.zeros_like(j))
    # hypergeometric pmf of j relevant among the t taken from the cut bucket
    log_p = _log_comb(r_, jc) + _log_comb(n_ - r_, (t_ - jc).clamp(min=0)) - _log_comb(n_, t_)
    p = torch.where(valid, torch.exp(log_p), 0.0)
    p = p / p.sum(1, keepdim=True)  # removes the common rounding of the log-gamma terms
    c = bucket_sum(nb_cut[:, None].expand_as(jc), rb_cut[:, None].expand_as(jc), t_.expand_as(jc), jc)
    denom = rb_cut[:, None] + jc
    term = torch.where(valid & (denom > 0), p * (a_full[:, None] + c) / denom.clamp(min=1), 0.0)
    return term.sum(1)


def _log_comb(n: Tensor, k: Tensor) -> Tensor:
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
