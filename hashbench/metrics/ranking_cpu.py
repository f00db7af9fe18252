"""The CPU ranking pass: a compiled (numba) loop per query over bit-packed codes, with no sort.

For each query, in database order:

1. **Distances and histogram.** In blocks of ``_BLOCK`` items, the Hamming distance ``d`` is the
   popcount of ``q XOR x`` summed over 64-bit words and the relevance ``r`` is ``q_labels AND x_labels ≠ 0``
   on bit-packed multi-hot words (or class equality). Each loop is branch-free over the block, so it
   vectorises (AVX-512 ``vpopcntq`` where the CPU has it). The codes ``v = 2d + r`` of the query's row
   are kept (2 bytes an item) and counted into a histogram (four interleaved copies, so that equal
   consecutive values do not serialise on one counter).
2. **Top K, ties by database index** (``ties="index"`` only). Within one distance the tie order *is*
   the database order, so with ``start[d]`` items (``rstart[d]`` relevant) at smaller distances, the
   ``c``-th item met at distance ``d`` has rank ``start[d] + c``, and the ``c_rel``-th relevant one adds
   ``(rstart[d] + c_rel) / (start[d] + c)`` to AP's sum when its rank is within K. One running counter
   per distance holds ``c`` and ``c_rel`` together (low / high 32 bits), so each item costs one
   read-modify-write; items beyond the bucket holding rank ``max(K, k)`` are skipped. The ranks are
   resolved at the end from each relevant item's counter and ``d``, so when most items are candidates
   (``max(K, k) >= N/2``, e.g. mAP over the whole database) the counting runs during step 1 instead of
   the histogram, and the final counters are the histogram: one pass.
3. **Tie-aware AP** (``ties="expected"`` only) from the histogram row alone, in closed form per distance
   bucket (see ``hashbench.metrics.ranking.expected_ap``): O(m) for the full buckets plus a sum over the
   hypergeometric count of relevant items in the bucket cut by rank K, whose weights follow from one
   another by their ratio (no factorials, no lookup beyond the harmonic numbers ``H[0..N]``).

4. **Graded relevance** (multi-label, ``graded`` only, ties by index): the grade ``g`` = number of shared
   labels (popcount of the AND of label words) is kept per item beside ``2d + r``; a running grade sum
   per distance, next to the running counts, gives each relevant item its cumulative grade
   ``G(rank)``, hence ACG@K, DCG@K and WAP@K (``hashbench.metrics.ranking``) in the same passes.

Query chunks run on a thread pool: the compiled loops release the GIL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from numba import types
from numba.extending import intrinsic
from torch import Tensor

__all__ = ["rank_cpu"]

# database items per block (a block's temporaries stay in L1); queries per task of the thread pool
_BLOCK = 1024
_CHUNK_QUERIES = 32


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of a uint64 (LLVM ``ctpop``: one ``popcnt`` instruction, or vectorised)."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@numba.njit(nogil=True, cache=True)
def _block_codes(q, q_lab, x_t, lab_t, single, b0, b1, dist, rel, out):
    """``out[i] = 2 d + r`` for database items ``b0:b1`` (``dist``/``rel`` are block scratch)."""
    n = b1 - b0
    x0 = x_t[0, b0:b1]
    q0 = q[0]
    for i in range(n):
        dist[i] = _popcount(q0 ^ x0[i])
    for w in range(1, x_t.shape[0]):
        xw = x_t[w, b0:b1]
        qw = q[w]
        for i in range(n):
            dist[i] += _popcount(qw ^ xw[i])
    y0 = lab_t[0, b0:b1]
    l0 = q_lab[0]
    if single:
        for i in range(n):
            rel[i] = l0 == y0[i]
    else:
        for i in range(n):
            rel[i] = (l0 & y0[i]) != 0
        for w in range(1, lab_t.shape[0]):
            yw = lab_t[w, b0:b1]
            lw = q_lab[w]
            for i in range(n):
                rel[i] |= (lw & yw[i]) != 0
    for i in range(n):
        out[i] = 2 * dist[i] + rel[i]


@numba.njit(nogil=True, cache=True)
def _block_grades(q_lab, lab_t, b0, b1, out):
    """``out[i]`` = number of labels shared by the query and item ``b0 + i`` (multi-hot label words)."""
    n = b1 - b0
    y0 = lab_t[0, b0:b1]
    l0 = q_lab[0]
    for i in range(n):
        out[i] = _popcount(np.uint64(l0 & y0[i]))
    for w in range(1, lab_t.shape[0]):
        yw = lab_t[w, b0:b1]
        lw = q_lab[w]
        for i in range(n):
            out[i] += _popcount(np.uint64(lw & yw[i]))


@numba.njit(nogil=True, cache=True)
def _count_graded(v, g, seen, gseen, terms, term_d, term_g, n_terms):
    """:func:`_count_item` that also adds the item's grade ``g`` to the running grade sum ``gseen[d]``
    and records, for a relevant item, ``g`` (low 32 bits) and the grade sum up to it (high bits)."""
    d = v >> 1
    gseen[d] += g
    term_g[n_terms] = g + (gseen[d] << 32)
    return _count_item(v, seen, terms, term_d, n_terms)


@numba.njit(nogil=True, cache=True)
def _graded_figures(terms, term_d, term_g, n_terms, base, gseen, base_g, top_k, inv_log):
    """``(Σ grades, DCG, WAP)`` over the top ``top_k`` from the relevant items' counters and grade sums.

    ``base_g[d]`` (filled here from the final ``gseen``) is the grade sum at distances below ``d``, so
    ``G = base_g[d] + (grade sum up to the item within d)`` is the cumulative grade at the item's rank;
    ``inv_log[k] = 1 / log2(1 + k)``."""
    acc = 0
    for d in range(base_g.shape[0]):
        base_g[d] = acc
        acc += gseen[d]
    g_sum = 0.0
    dcg = 0.0
    wap = 0.0
    n_rel = 0
    for t in range(n_terms):
        rank = (terms[t] + base[term_d[t]]) & 0xFFFFFFFF
        if rank > top_k:
            continue
        g = term_g[t] & 0xFFFFFFFF
        g_sum += g
        dcg += (2.0**g - 1.0) * inv_log[rank]
        wap += (base_g[term_d[t]] + (term_g[t] >> 32)) / rank
        n_rel += 1
    return g_sum, dcg, (wap / n_rel if n_rel > 0 else 0.0)


@numba.njit(nogil=True, cache=True)
def _count_item(v, seen, terms, term_d, n_terms):
    """Count item ``v = 2d + r`` as the next one met at distance ``d``: ``seen[d]`` holds the items met
    there (low 32 bits) and the relevant ones (high 32 bits). A relevant item's counter value and ``d``
    are appended to ``terms``/``term_d`` (branch-free: the slot is reused unless ``r``)."""
    d = v >> 1
    r = v & 1
    c = seen[d] + 1 + (r << 32)
    seen[d] = c
    terms[n_terms] = c
    term_d[n_terms] = d
    return n_terms + r


@numba.njit(nogil=True, cache=True)
def _ap_and_hits(terms, term_d, n_terms, base, top_k, precision_k):
    """AP@top_k and hits@precision_k from the relevant items' counters.

    ``base[d]`` holds the items (low 32 bits) and relevant items (high 32 bits) at distances below ``d``,
    so ``terms + base[term_d]`` is an item's rank and, in the high bits, its relevant rank."""
    ap_sum = 0.0
    n_rel_k = 0
    n_rel_p = 0
    for t in range(n_terms):
        y = terms[t] + base[term_d[t]]
        rank = y & 0xFFFFFFFF
        inside = rank <= top_k
        ap_sum += inside * ((y >> 32) / rank)
        n_rel_k += inside
        n_rel_p += rank <= precision_k
    return (ap_sum / n_rel_k if n_rel_k > 0 else 0.0), n_rel_p


@numba.njit(nogil=True, cache=True)
def _base_and_cut(row, k_max, base):
    """Fill ``base`` from the histogram ``row`` (bins ``2d + r``); return the largest ``v = 2d + r`` that can
    be in the top ``k_max`` (the bucket holding rank ``k_max``)."""
    n_before = 0
    rel_before = 0
    v_max = row.shape[0] - 1
    for d in range(base.shape[0]):
        base[d] = n_before + (rel_before << 32)
        n_before += row[2 * d] + row[2 * d + 1]
        rel_before += row[2 * d + 1]
        if n_before >= k_max:
            v_max = min(v_max, 2 * d + 1)
    return v_max


@numba.njit(nogil=True, cache=True)
def _bucket_sum(nb, rb, size, rel, harmonic):
    """Expected ``Σ (rb + s) / (nb + p)`` over the relevant items of the first ``size`` positions of a
    bucket, ``rel`` of them relevant, in a uniformly random order: position ``p`` (rank ``nb + p``) is
    relevant with probability ``rel/size`` and then has ``(p-1)(rel-1)/(size-1)`` relevant before it in
    the bucket, on average; ``Σ_p 1/(nb+p) = H[nb+size] - H[nb]``."""
    if rel == 0:
        return 0.0
    dh = harmonic[nb + size] - harmonic[nb]
    frac = (rel - 1) / (size - 1) if size > 1 else 0.0
    return rel / size * ((rb + 1) * dh + frac * (size - (nb + 1) * dh))


@numba.njit(nogil=True, cache=True)
def _cut_term(a_full, nb, rb, t, j, harmonic):
    """AP@K when ``j`` of the ``t`` items taken from the cut bucket are relevant."""
    if rb + j == 0:
        return 0.0
    return (a_full + _bucket_sum(nb, rb, t, j, harmonic)) / (rb + j)


@numba.njit(nogil=True, cache=True)
def _cut_expectation(a_full, nb, rb, n, r, t, harmonic):
    """Expected AP@K over the hypergeometric number ``j`` of relevant items among the ``t`` taken from the
    cut bucket (``n`` items, ``r`` relevant). Weights relative to the mode, by the ratio
    ``w(j+1)/w(j) = (r-j)(t-j) / ((j+1)(n-r-t+j+1))``, normalised by their sum; the tails stop once a
    weight falls below 1e-300 of the mode's."""
    lo = max(0, t - (n - r))
    hi = min(r, t)
    mode = min(hi, max(lo, (t + 1) * (r + 1) // (n + 2)))
    total = _cut_term(a_full, nb, rb, t, mode, harmonic)
    weights = 1.0
    w = 1.0
    for j in range(mode, hi):
        w *= (r - j) * (t - j) / ((j + 1.0) * (n - r - t + j + 1.0))
        if w < 1e-300:
            break
        total += w * _cut_term(a_full, nb, rb, t, j + 1, harmonic)
        weights += w
    w = 1.0
    for j in range(mode, lo, -1):
        w *= j * (n - r - t + j) / ((r - j + 1.0) * (t - j + 1.0))
        if w < 1e-300:
            break
        total += w * _cut_term(a_full, nb, rb, t, j - 1, harmonic)
        weights += w
    return total / weights


@numba.njit(nogil=True, cache=True)
def _expected_ap_and_hits(row, top_k, precision_k, harmonic):
    """Tie-aware AP@top_k and expected hits@precision_k from one histogram row (bins ``2d + r``)."""
    nb = 0
    rb = 0
    a_full = 0.0
    ap = -1.0
    hits = -1.0
    for d in range(row.shape[0] // 2):
        n_d = row[2 * d] + row[2 * d + 1]
        r_d = row[2 * d + 1]
        if n_d == 0:
            continue
        if hits < 0 and nb + n_d >= precision_k:
            hits = rb + (precision_k - nb) * r_d / n_d
        if ap < 0:
            if nb + n_d < top_k:
                a_full += _bucket_sum(nb, rb, n_d, r_d, harmonic)
            else:
                ap = _cut_expectation(a_full, nb, rb, n_d, r_d, top_k - nb, harmonic)
        if ap >= 0 and hits >= 0:
            break
        nb += n_d
        rb += r_d
    return ap, hits


@numba.njit(nogil=True, cache=True)
def _rank_queries(
    q, q_lab, x_t, lab_t, single, bits, top_k, precision_k, index_ties, harmonic, graded, inv_log,
    hist, ap, hits, gout, ghist,
):  # fmt: skip
    """Queries ``q`` ``(B, W)`` uint64 against the database ``x_t`` ``(W, N)``: fills ``hist`` ``(B, 2(m+1))``
    (bin ``2d + r``), AP@top_k into ``ap`` and hits@precision_k into ``hits``: ties by database index with
    ``index_ties``, else their expectation over all orders of tied items (``harmonic``: ``H[0..N]``).
    With ``graded`` (multi-label, ``index_ties``), ``gout[:, 0:3]`` gets the sum of grades, DCG and WAP
    over the top K (``inv_log[k] = 1/log2(1+k)``) and ``ghist`` ``(B, C+1)`` the number of database items
    of each grade.

    When the top ``max(K, k)`` is at least half the database, every item is counted as it is met (one
    pass; the counters end as the histogram); otherwise pass 1 histograms the row and keeps it, and
    pass 2 counts only the items up to the cut.
    """
    n = x_t.shape[1]
    n_bins = 2 * (bits + 1)
    k_max = max(top_k, precision_k)
    one_pass = index_ties and 2 * k_max >= n  # most items are candidates: a second pass would not pay
    keep_row = index_ties and not one_pass  # pass 2 reads the row of 2d + r; otherwise one block is reused
    dist = np.empty(_BLOCK, np.uint16)
    rel = np.empty(_BLOCK, np.uint16)
    codes = np.empty(n if keep_row else _BLOCK, np.uint16)
    terms = np.empty(n if index_ties else 0, np.int64)
    term_d = np.empty(n if index_ties else 0, np.uint16)
    grades = np.empty((n if keep_row else _BLOCK) if graded else 0, np.uint16)
    term_g = np.empty(n if graded else 0, np.int64)
    h4 = np.zeros((4, n_bins), np.int64)
    base = np.zeros(bits + 1, np.int64)
    seen = np.zeros(bits + 1, np.int64)
    gseen = np.zeros(bits + 1, np.int64)
    base_g = np.zeros(bits + 1, np.int64)
    for j in range(q.shape[0]):
        row = hist[j]
        h4[:] = 0
        seen[:] = 0
        gseen[:] = 0
        n_terms = 0
        for b0 in range(0, n, _BLOCK):
            b1 = min(n, b0 + _BLOCK)
            block = codes[b0:b1] if keep_row else codes[: b1 - b0]
            _block_codes(q[j], q_lab[j], x_t, lab_t, single, b0, b1, dist, rel, block)
            if graded:
                gblock = grades[b0:b1] if keep_row else grades[: b1 - b0]
                _block_grades(q_lab[j], lab_t, b0, b1, gblock)
                for i in range(b1 - b0):
                    ghist[j, gblock[i]] += 1
            if one_pass and graded:
                for i in range(b1 - b0):
                    n_terms = _count_graded(
                        np.int64(block[i]), np.int64(gblock[i]), seen, gseen, terms, term_d, term_g, n_terms
                    )
                continue
            if one_pass:
                for i in range(b1 - b0):
                    n_terms = _count_item(np.int64(block[i]), seen, terms, term_d, n_terms)
                continue
            n4 = (b1 - b0) // 4 * 4
            for i in range(0, n4, 4):
                h4[0, block[i]] += 1
                h4[1, block[i + 1]] += 1
                h4[2, block[i + 2]] += 1
                h4[3, block[i + 3]] += 1
            for i in range(n4, b1 - b0):
                h4[0, block[i]] += 1
        if one_pass:
            for d in range(bits + 1):
                row[2 * d + 1] = seen[d] >> 32
                row[2 * d] = (seen[d] & 0xFFFFFFFF) - row[2 * d + 1]
        else:
            for b in range(n_bins):
                row[b] = h4[0, b] + h4[1, b] + h4[2, b] + h4[3, b]
        if not index_ties:
            ap[j], hits[j] = _expected_ap_and_hits(row, top_k, precision_k, harmonic)
            continue
        v_max = _base_and_cut(row, k_max, base)
        if keep_row and graded:
            for i in range(n):
                if codes[i] <= v_max:
                    n_terms = _count_graded(
                        np.int64(codes[i]), np.int64(grades[i]), seen, gseen, terms, term_d, term_g, n_terms
                    )
        elif keep_row:
            for i in range(n):
                if codes[i] <= v_max:
                    n_terms = _count_item(np.int64(codes[i]), seen, terms, term_d, n_terms)
        ap[j], hits[j] = _ap_and_hits(terms, term_d, n_terms, base, top_k, precision_k)
        if graded:
            gout[j, 0], gout[j, 1], gout[j, 2] = _graded_figures(
                terms, term_d, term_g, n_terms, base, gseen, base_g, top_k, inv_log
            )


def _words(bytes_: np.ndarray) -> np.ndarray:
    """``(N, B)`` uint8 -> ``(N, ceil(B/8))`` uint64, zero-padded (bit order is irrelevant to popcount)."""
    pad = (-bytes_.shape[1]) % 8 or (8 if bytes_.shape[1] == 0 else 0)
    return np.ascontiguousarray(np.pad(bytes_, ((0, 0), (0, pad)))).view(np.uint64)


def _label_words(labels: Tensor, single: bool) -> np.ndarray:
    """Labels as ``(N, L)`` int64: class indices (``L = 1``) or bit-packed multi-hot words."""
    if single:
        return labels.long().numpy()[:, None]
    return _words(np.packbits(labels.numpy() != 0, axis=1, bitorder="little")).view(np.int64)


def rank_cpu(
    query_packed: Tensor,
    query_labels: Tensor,
    database_packed: Tensor,
    database_labels: Tensor,
    single: bool,
    bits: int,
    top_k: int,
    precision_k: int,
    index_ties: bool,
    workers: int,
    graded: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(hist (Q, m+1, 2) int64, ap (Q,) float64, hits (Q,) float64, graded (Q, 3) float64, grade_hist
    (Q, C+1) int64)`` for packed uint8 codes on CPU. With ``graded=True`` (multi-hot labels,
    ``index_ties``), ``graded`` holds the sum of grades (shared labels), DCG and WAP over the top ``top_k``
    and ``grade_hist`` the number of database items of each grade; else both have 0 columns.

    Limits (checked by the caller): ``m <= 32766`` (``2d + r`` is a uint16) and ``N < 2**31``.

    ``top_k`` and ``precision_k`` are already clamped to ``[1, N]``; ``ap``/``hits`` are under ties by
    database index with ``index_ties``, else tie-aware expectations. ``workers`` threads each take chunks
    of queries.
    """
    q = _words(query_packed.numpy())
    q_lab = np.ascontiguousarray(_label_words(query_labels, single))
    x_t = np.ascontiguousarray(_words(database_packed.numpy()).T)  # (W, N): blocks of one word
    lab_t = np.ascontiguousarray(_label_words(database_labels, single).T)
    n_q = q.shape[0]
    hist = np.zeros((n_q, 2 * (bits + 1)), np.int64)
    ap = np.zeros(n_q)
    hits = np.zeros(n_q)
    n = x_t.shape[1]
    harmonic = np.zeros(0 if index_ties else n + 1)
    if not index_ties:
        harmonic[1:] = np.cumsum(1.0 / np.arange(1, n + 1))
    graded = graded and index_ties and not single
    gout = np.zeros((n_q, 3 if graded else 0))
    ghist = np.zeros((n_q, database_labels.shape[1] + 1 if graded else 0), np.int64)
    inv_log = np.zeros(n + 1 if graded else 0)
    if graded:
        inv_log[1:] = 1.0 / np.log2(np.arange(2, n + 2))

    def run(s: int) -> None:
        e = min(n_q, s + _CHUNK_QUERIES)
        _rank_queries(
            q[s:e], q_lab[s:e], x_t, lab_t, single, bits, top_k, precision_k, index_ties, harmonic, graded,
            inv_log, hist[s:e], ap[s:e], hits[s:e], gout[s:e], ghist[s:e],
        )  # fmt: skip

    starts = range(0, n_q, _CHUNK_QUERIES)
    workers = max(1, min(workers, len(starts)))
    if workers == 1:
        for s in starts:
            run(s)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))
    hist_t = torch.from_numpy(hist).view(n_q, bits + 1, 2)
    return (
        hist_t,
        torch.from_numpy(ap),
        torch.from_numpy(hits),
        torch.from_numpy(gout),
        torch.from_numpy(ghist),
    )
