"""The single, chunked Hamming-ranking pass from which every retrieval figure is computed.

Method (exact; no ``Q×N`` float matrix, no full sort; memory bounded by the chunk):

1. **Scores.** For a chunk of up to 64 queries and a block of database columns, one integer matrix
   product gives, for every query–item pair, ``v = W·d + L``: ``d`` the Hamming distance (from
   ``q·x = m − 2d`` on ±1 codes), ``L`` the number of shared labels (label columns appended to the
   codes), ``W`` a power of two above any ``L``; so ``d = v >> log2 W`` and *relevant* ⟺
   ``v & (W−1) ≠ 0``. On CPU it is an int8 GEMM with int32 output (``torch._int_mm``, VNNI): exact by
   construction and by far the fastest distance kernel there (faster than popcount on packed words,
   see ``benchmarks/eval_speed.py``). Elsewhere a float64 GEMM, exact for these small integers
   whatever the TF32 settings.
2. **Histogram** (pass 1 over the column blocks). A ``bincount`` per block counts, per query,
   relevant and irrelevant items at each distance 0..m: P@H≤r, the empty-ball rate, the PR curve,
   the Hamming histograms, and the tie-aware AP (closed form per distance bucket) follow.
3. **Top K, ties by index** (pass 2). The bucket ``D`` holding rank ``K`` is read off the counts; the
   scores are recomputed block by block (cheaper than keeping them: memory traffic costs more than
   the int8 GEMM) and the items with ``d ≤ D`` extracted in database order (when bucket ``D`` is huge,
   only its first ``K − #{d < D}`` items, scanning blocks until found). A stable radix sort of the
   small keys ``(query, d)`` (numpy, uint16) yields the exact ranking: ascending distance, ties by
   database index. For ``K = N`` each row is radix-sorted by ``d`` (uint8) instead.

Column blocks keep a chunk's scores in cache between the GEMM, the bincount and the extraction.
Chunks are processed by one thread per core, each running single-threaded torch/numpy ops (which
release the GIL): bincount and the radix sort are serial kernels, so this beats intra-op threading.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["RankingResult", "expected_ap", "expected_hits", "ranking_pass"]

# queries per chunk and database columns per block (CPU), tuned on 2 cores so that both workers'
# blocks stay in cache between the GEMM, the bincount and the extraction (the int8 GEMM is efficient
# from ~64 queries on); caps on a chunk's B × N score buffer (kept only when whole rows are sorted,
# K = N) and on its B × K candidate arrays
_CHUNK_QUERIES = 64
_BLOCK_COLUMNS = 4096
_CHUNK_ELEMENTS = 1 << 24
_CHUNK_CANDIDATES = 1 << 22
# a cut bucket this much larger than twice what is taken from it is scanned by prefix, not extracted
_BIG_BUCKET_SLACK = 4096
# labels enter the GEMM (one-hot / multi-hot columns) unless there are too many classes or labels
_MAX_FUSED_CLASSES = 256
_MAX_FUSED_LABELS = 127
# CPU fast paths: int8 GEMM (torch._int_mm) and numpy for per-candidate steps (switchable for tests)
_USE_INT8 = True
_USE_NUMPY = True
_MAX_WORKERS = 8


@dataclass
class RankingResult:
    """Per-query outcome of one ranking pass.

    ``hist[q, d, 0/1]`` counts the irrelevant / relevant database items at Hamming distance ``d`` from
    query ``q``. ``ap`` is AP@top_k and ``hits`` the number of relevant items in the top ``precision_k``
    under the requested tie rule (for ``ties="expected"`` these are expectations).
    """

    bits: int
    n_database: int
    top_k: int
    precision_k: int
    ties: str
    hist: Tensor
    ap: Tensor
    hits: Tensor


# ----------------------------------------------------------------------------- scores


class _Scorer:
    """Computes the int32 scores ``v = W*d + L`` for a chunk of queries against the whole database.

    ``d`` is the Hamming distance, ``0 <= L < W`` and ``L > 0`` iff the pair is relevant (``L`` is the
    number of shared labels, or the relevance flag when labels are handled separately).
    """

    def __init__(self, q: Tensor, yq: Tensor, x: Tensor, yx: Tensor, single: bool) -> None:
        device = q.device
        self.bits = m = q.shape[1]
        self.n = x.shape[0]
        self.int8 = _USE_INT8 and device.type == "cpu" and hasattr(torch, "_int_mm")
        self.separate_labels = False
        l_max = 1
        if single:
            classes, inv = torch.unique(torch.cat([yq, yx]), return_inverse=True)
            n_cls = classes.numel()
            if n_cls <= _MAX_FUSED_CLASSES:
                yq = torch.nn.functional.one_hot(inv[: yq.shape[0]], n_cls)
                yx = torch.nn.functional.one_hot(inv[yq.shape[0] :], n_cls)
            else:
                self.separate_labels = True
                self.yq, self.yx = inv[: yq.shape[0]], inv[yq.shape[0] :]
        else:
            l_max = int(min(yq.sum(1).max().item(), yx.sum(1).max().item()))
            if l_max > _MAX_FUSED_LABELS or yq.shape[1] > 4096:
                self.separate_labels = True
                self.yq, self.yx = yq.float(), yx.float()
                l_max = 1
        # W: a power of two > l_max, so that d = v >> log2(W) and relevance = (v & (W-1)) != 0
        self.log_w = max(1, math.ceil(math.log2(l_max + 1)))
        self.w = w = 1 << self.log_w
        dtype = torch.int8 if self.int8 else torch.float64
        # v = -(W/2) q·x + L + W m/2 = W d + L  (q·x = m - 2d); the constant W m / 2 is added by
        # extra columns whose products sum to it, so that the GEMM output needs no further pass
        const_q, const_x = [], []
        rest = m
        while rest > 0:
            step = min(rest, 127)
            const_q.append(w // 2)
            const_x.append(step)
            rest -= step
        parts_q = [
            q.to(dtype) * (-(w // 2)),
            torch.tensor(const_q, dtype=dtype, device=device).expand(len(q), -1),
        ]
        parts_x = [x.to(dtype), torch.tensor(const_x, dtype=dtype, device=device).expand(len(x), -1)]
        if not self.separate_labels:
            parts_q.append(yq.to(dtype))
            parts_x.append(yx.to(dtype))
        a = torch.cat(parts_q, 1)
        b = torch.cat(parts_x, 1)
        pad = (-a.shape[1]) % 8
        if pad:
            a = torch.nn.functional.pad(a, (0, pad))
            b = torch.nn.functional.pad(b, (0, pad))
        self.a = a.contiguous()
        self.b_t = b.t().contiguous()
        self._blocks: dict[tuple[int, int], Tensor] = {}

    def scores(
        self, rows: slice | Tensor, c0: int = 0, c1: int | None = None, out: Tensor | None = None
    ) -> Tensor:
        """``W*d + L`` for the queries ``rows`` and database items ``c0:c1`` as int32 ``(rows, c1-c0)``."""
        c1 = self.n if c1 is None else c1
        a = self.a[rows]
        if c0 == 0 and c1 == self.n:
            b_t = self.b_t
        else:
            key = (c0, c1)
            b_t = self._blocks.get(key)
            if b_t is None:  # contiguous copy of the block's columns, kept for the second pass
                b_t = self._blocks[key] = self.b_t[:, c0:c1].contiguous()
        if self.int8:
            v = torch._int_mm(a, b_t, out=out) if out is not None else torch._int_mm(a, b_t)
        else:
            v = torch.mm(a, b_t).round_().to(torch.int32)
        if self.separate_labels:
            if self.yq.dim() == 1:
                rel = self.yq[rows, None] == self.yx[None, c0:c1]
            else:
                rel = (self.yq[rows] @ self.yx[c0:c1].t()) > 0
            v += rel
        return v


# ----------------------------------------------------------------------------- helpers
# On CPU the per-candidate steps use numpy: its gathers and 8/16-bit radix sort are several times
# faster than torch's advanced indexing and comparison sort. Elsewhere they stay in torch.


def _numpy(t: Tensor) -> bool:
    return _USE_NUMPY and t.device.type == "cpu"


def _flatnonzero(mask: Tensor) -> Tensor:
    """Flat int64 indices of the True entries of a contiguous bool tensor, in memory order."""
    if _numpy(mask):
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.reshape(-1).nonzero()[:, 0]


def _take(x: Tensor, idx: Tensor) -> Tensor:
    """``x.reshape(-1)[idx]``."""
    if _numpy(x):
        return torch.from_numpy(np.take(x.numpy().reshape(-1), idx.numpy()))
    return x.reshape(-1)[idx]


def _stable_argsort(keys: Tensor) -> Tensor:
    """Stable argsort of a 1-D tensor of non-negative integer keys < 2**16 (radix sort on CPU)."""
    if _numpy(keys):
        return torch.from_numpy(np.argsort(keys.numpy().astype(np.uint16), kind="stable"))
    return torch.sort(keys, stable=True).indices


def _sorted_rows(keys: Tensor, values: Tensor) -> Tensor:
    """``values`` reordered, row by row, by a stable sort of ``keys`` (small non-negative integers)."""
    if _numpy(keys):
        order = np.argsort(keys.numpy(), axis=1, kind="stable")
        order += np.arange(0, order.size, order.shape[1])[:, None]  # flat indices
        return torch.from_numpy(np.take(values.numpy().reshape(-1), order))
    return torch.gather(values, 1, torch.sort(keys, dim=1, stable=True).indices)


def _ap_from_sorted(rel: Tensor, k: int, pk: int) -> tuple[Tensor, Tensor]:
    """AP@k and hits@pk of rows of relevance flags (nonzero = relevant) in ranking order.

    ``AP = (1/R) Σ_i rel_i · cum_i / i`` with ``cum_i`` the relevant items in ranks 1..i: a cumulative
    sum and a matrix–vector product with ``1/i``, in float64.
    """
    if _numpy(rel):
        r = rel.numpy()[:, :k] != 0
        cum = np.cumsum(r, axis=1, dtype=np.float64)
        n_rel = cum[:, -1].copy()
        cum *= r
        ap_sum = cum @ (1.0 / np.arange(1, k + 1, dtype=np.float64))
        ap = np.where(n_rel > 0, ap_sum / np.maximum(n_rel, 1), 0.0)
        hits = np.count_nonzero(rel.numpy()[:, :pk], axis=1).astype(np.float64)
        return torch.from_numpy(ap), torch.from_numpy(hits)
    r = rel[:, :k] != 0
    cum = torch.cumsum(r, 1, dtype=torch.float64)
    n_rel = cum[:, -1]
    ap_sum = (cum * r) @ (1.0 / torch.arange(1, k + 1, dtype=torch.float64, device=rel.device))
    ap = torch.where(n_rel > 0, ap_sum / n_rel.clamp(min=1), 0.0)
    return ap, (rel[:, :pk] != 0).sum(1, dtype=torch.float64)


# ----------------------------------------------------------------------------- the pass


def ranking_pass(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    single: bool,
    top_k: int | None,
    precision_k: int,
    ties: str = "index",
    chunk_size: int | None = None,
    workers: int | None = None,
) -> RankingResult:
    """Rank the database for every query (ascending Hamming distance) and collect statistics.

    ``query_codes``/``database_codes`` are ±1 tensors ``(Q, m)``/``(N, m)``; labels are int64 class
    indices (``single=True``) or 0/1 multi-hot ``(·, C)``. ``top_k=None`` means the whole database;
    ``top_k`` and ``precision_k`` are clamped to ``[1, N]``. On CPU, chunks of queries are processed by
    ``workers`` threads (default: ``torch.get_num_threads()``, at most 8), each running single-threaded
    ops.
    """
    if ties not in ("index", "expected"):
        raise ValueError(f"ties must be 'index' or 'expected', got {ties!r}")
    if (top_k is not None and top_k < 1) or precision_k < 1:
        raise ValueError(f"top_k and precision_k must be >= 1, got {top_k} and {precision_k}")
    q_n, m = query_codes.shape
    n = database_codes.shape[0]
    if q_n == 0 or n == 0:
        raise ValueError("need at least one query and one database item")
    k = n if top_k is None else max(1, min(int(top_k), n))
    pk = max(1, min(int(precision_k), n))
    device = query_codes.device
    scorer = _Scorer(query_codes, query_labels, database_codes, database_labels, single)
    if chunk_size is None:
        chunk_size = min(q_n, _CHUNK_QUERIES, _CHUNK_CANDIDATES // max(k, pk))
        if ties == "index" and max(k, pk) == n:  # rows sorted whole: the (B, N) scores are kept
            chunk_size = min(chunk_size, _CHUNK_ELEMENTS // n)
    # sort keys query*(m+1) + d must fit 16 bits; bincount bins query*W*(m+1) + ... must fit int32
    chunk_size = max(1, min(chunk_size, 65535 // (m + 1), (2**31 - 1) // (scorer.w * (m + 1))))
    out = RankingResult(
        m,
        n,
        k,
        pk,
        ties,
        hist=torch.empty(q_n, m + 1, 2, dtype=torch.int64, device=device),
        ap=torch.empty(q_n, dtype=torch.float64, device=device),
        hits=torch.empty(q_n, dtype=torch.float64, device=device),
    )
    harmonic = _harmonic(n, device) if ties == "expected" else None
    chunks = [(s, min(q_n, s + chunk_size)) for s in range(0, q_n, chunk_size)]
    local = threading.local()
    inference = torch.is_inference_mode_enabled()  # worker threads do not inherit it

    def run(chunk: tuple[int, int]) -> None:
        with torch.inference_mode(inference):
            run_chunk(chunk)

    def run_chunk(chunk: tuple[int, int]) -> None:
        bufs = None
        if device.type == "cpu":  # per-thread buffers, reused: no page faults per block
            bufs = getattr(local, "bufs", None)
            if bufs is None:
                bufs = local.bufs = {}
        _chunk(scorer, *chunk, k, pk, ties, harmonic, out, bufs)

    if workers is None:  # one per core, capped: each holds its own score buffers
        workers = min(torch.get_num_threads(), _MAX_WORKERS) if device.type == "cpu" else 1
    workers = max(1, min(workers, len(chunks)))
    if workers == 1:
        for c in chunks:
            run(c)
        return out
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            list(pool.map(run, chunks))
    finally:
        torch.set_num_threads(threads)
    return out


def _blocks(n: int, device: torch.device) -> list[tuple[int, int]]:
    """Column blocks of the database: small enough that a chunk's scores stay in cache (CPU)."""
    c = _BLOCK_COLUMNS if device.type == "cpu" else n
    return [(c0, min(n, c0 + c)) for c0 in range(0, n, c)]


def _chunk(
    scorer: _Scorer,
    s: int,
    e: int,
    k: int,
    pk: int,
    ties: str,
    harmonic: Tensor | None,
    out: RankingResult,
    bufs: dict | None,
) -> None:
    """Queries ``s:e``: distance/relevance histogram, then AP@k and hits@pk, written into ``out``.

    Scores ``v[j, i] = W*d + L`` for query j and item i: ``v >> log2(W)`` is the distance and
    ``v & (W-1)`` is nonzero iff relevant. For the top K the database is scanned twice, block by
    block (the scores are recomputed rather than kept: the int8 GEMM is cheaper than memory traffic):
    first for the histogram, then, knowing the cut, to extract the candidates.
    """
    m, n = scorer.bits, scorer.n
    w, log_w = scorer.w, scorer.log_w
    b = e - s
    bins = w * (m + 1)
    k_max = max(k, pk)
    device = scorer.a.device
    rows = slice(s, e)
    if ties == "index" and k_max == n:  # the whole database: a stable (radix) sort of each row
        v = scorer.scores(rows, out=_buffer(bufs, "full", (b, n), torch.int32))
        h = _row_histograms(v, bins).view(b, m + 1, w)
        _store_hist(out, s, e, h)
        d = (v >> log_w).to(torch.uint8 if m < 256 else torch.int16)
        out.ap[s:e], out.hits[s:e] = _ap_from_sorted(_sorted_rows(d, v) & (w - 1), k, pk)
        return
    blocks = _blocks(n, device)
    off = (torch.arange(b, dtype=torch.int32, device=device) * bins)[:, None]
    counts = torch.zeros(b * bins, dtype=torch.int64, device=device)
    for c0, c1 in blocks:  # pass 1: histogram
        v = scorer.scores(rows, c0, c1, out=_buffer(bufs, "block", (b, c1 - c0), torch.int32))
        v += off  # query j's values in [j*bins, (j+1)*bins)
        counts += torch.bincount(v.view(-1), minlength=b * bins)
    h = counts.view(b, m + 1, w)
    _store_hist(out, s, e, h)
    if ties == "expected":
        n_d = out.hist[s:e].sum(2).double()
        r_d = out.hist[s:e, :, 1].double()
        out.ap[s:e] = expected_ap(n_d, r_d, k, harmonic)
        out.hits[s:e] = expected_hits(n_d, r_d, pk)
        return
    # pass 2: the candidates for the top k_max, in database order within each query
    n_d = h.sum(-1)
    cum = torch.cumsum(n_d, 1)
    dcut = (cum < k_max).sum(1)  # bucket holding rank k_max
    n_cut = n_d.gather(1, dcut[:, None]).squeeze(1)
    n_before = cum.gather(1, dcut[:, None]).squeeze(1) - n_cut  # items with d < dcut (< k_max)
    t = k_max - n_before  # items taken from bucket dcut (1..n_cut)
    # normally all of bucket dcut is extracted and the stable sort puts its first t first; when it is
    # much larger than t, only its first t items are collected, scanning blocks until enough
    big = n_cut > 2 * t + _BIG_BUCKET_SLACK
    lo = off[:, 0] + (dcut << log_w).to(torch.int32)  # v < lo  <=>  d < dcut
    thr = torch.where(big, lo, lo + w)[:, None]  # v < lo + w  <=>  d <= dcut
    pieces = []
    for c0, c1 in blocks:
        v = scorer.scores(rows, c0, c1, out=_buffer(bufs, "block", (b, c1 - c0), torch.int32))
        v += off
        mask = _less(v, thr, _buffer(bufs, "mask", (b, c1 - c0), torch.bool))
        pieces.append(_take(v, _flatnonzero(mask)))
    if bool(big.any()):
        pieces.append(_bucket_prefix(scorer, s, big, lo - off[:, 0], w, t, off[:, 0], blocks))
    vc = torch.cat(pieces)
    # sort by (query, distance) = vc >> log2(W); stable: database order within a distance
    order = _stable_argsort(vc >> log_w)
    sizes = torch.where(big, k_max, n_before + n_cut)
    start = torch.cumsum(sizes, 0) - sizes
    first = (start[:, None] + torch.arange(k_max, device=device)[None, :]).view(-1)
    top = _take(vc, _take(order, first)).view(b, k_max)
    out.ap[s:e], out.hits[s:e] = _ap_from_sorted(top & (w - 1), k, pk)


def _buffer(bufs: dict, name: str, shape: tuple[int, int], dtype: torch.dtype) -> Tensor | None:
    """A reusable per-thread buffer (no page faults per block); None where buffers are not kept."""
    if bufs is None:
        return None
    buf = bufs.get(name)
    size = shape[0] * shape[1]
    if buf is None or buf.numel() < size:
        buf = bufs[name] = torch.empty(size, dtype=dtype)
    return buf[:size].view(shape)


def _store_hist(out: RankingResult, s: int, e: int, h: Tensor) -> None:
    out.hist[s:e, :, 0] = h[..., 0]
    out.hist[s:e, :, 1] = h[..., 1:].sum(-1)


def _less(v: Tensor, thr: Tensor, out: Tensor | None) -> Tensor:
    if _numpy(v):  # numpy's comparison is vectorised (several times faster than torch.lt here)
        return torch.from_numpy(np.less(v.numpy(), thr.numpy(), out=None if out is None else out.numpy()))
    return torch.lt(v, thr, out=out)


def _row_histograms(v: Tensor, bins: int) -> Tensor:
    """``(B, bins)`` counts of the values of each row of ``v`` (non-negative, < bins)."""
    if _numpy(v):  # row by row on CPU: no offset pass, and each row's counters stay in L1
        return torch.stack([torch.bincount(row, minlength=bins) for row in v])
    off = torch.arange(v.shape[0], dtype=v.dtype, device=v.device)[:, None] * bins
    return torch.bincount((v + off).view(-1), minlength=v.shape[0] * bins).view(-1, bins)


def _bucket_prefix(
    scorer: _Scorer,
    s: int,
    big: Tensor,
    lo: Tensor,
    w: int,
    t: Tensor,
    off: Tensor,
    blocks: list[tuple[int, int]],
) -> Tensor:
    """Offset scores of the first ``t[j]`` items (database order) of the cut bucket, values in
    ``[lo[j], lo[j] + w)``, of each query ``j`` with ``big[j]``: blocks are scanned in order, and only
    for the queries still short of ``t[j]``."""
    todo = big.nonzero()[:, 0]
    need = t[todo].clone()
    found = []
    for c0, c1 in blocks:
        if todo.numel() == 0:
            break
        v = scorer.scores(todo + s, c0, c1)
        in_bucket = (v >= lo[todo, None]) & (v < lo[todo, None] + w)
        flat = _flatnonzero(in_bucket.contiguous())  # by query, database order within
        row = flat // (c1 - c0)
        cnt = torch.bincount(row, minlength=todo.numel())
        rank = torch.arange(row.numel(), device=row.device) - (torch.cumsum(cnt, 0) - cnt)[row]
        take = rank < need[row]
        found.append(_take(v, flat[take]) + off[todo[row[take]]])
        need = need - torch.minimum(cnt, need)
        todo, need = todo[need > 0], need[need > 0]
    return torch.cat(found)


# ----------------------------------------------------------------------------- tie-aware AP


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
    c = bucket_sum(nb_cut[:, None].expand_as(jc), rb_cut[:, None].expand_as(jc), t_.expand_as(jc), jc)
    denom = rb_cut[:, None] + jc
    term = torch.where(valid & (denom > 0), p * (a_full[:, None] + c) / denom.clamp(min=1), 0.0)
    return term.sum(1)


def _log_comb(n: Tensor, k: Tensor) -> Tensor:
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
