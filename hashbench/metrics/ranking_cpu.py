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
   read-modify-write; items beyond the bucket holding rank ``max(K, k)`` are skipped.

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
def _count_item(v, base, seen, terms, n_terms):
    """Count item ``v = 2d + r`` as the next at distance ``d``; if relevant, store its rank ``start[d] + c``
    plus its relevant rank in the high 32 bits (``base`` and ``seen`` are kept the same way)."""
    d = v >> 1
    r = v & 1
    c = seen[d] + 1 + (r << 32)
    seen[d] = c
    terms[n_terms] = c + base[d]
    return n_terms + r


@numba.njit(nogil=True, cache=True)
def _relevant_ranks(codes, v_max, base, seen, terms):
    """Ranks of the relevant items among ``codes`` (database order) with ``v <= v_max``; returns how many."""
    seen[:] = 0
    n_terms = 0
    if v_max >= 2 * base.shape[0] - 1:  # every item counts (K = N): a loop without the test
        for i in range(codes.shape[0]):
            n_terms = _count_item(np.int64(codes[i]), base, seen, terms, n_terms)
    else:
        for i in range(codes.shape[0]):
            if codes[i] <= v_max:
                n_terms = _count_item(np.int64(codes[i]), base, seen, terms, n_terms)
    return n_terms


@numba.njit(nogil=True, cache=True)
def _rank_queries(q, q_lab, x_t, lab_t, single, bits, top_k, precision_k, index_ties, hist, ap, hits):
    """Queries ``q`` ``(B, W)`` uint64 against the database ``x_t`` ``(W, N)``: fills ``hist`` ``(B, 2(m+1))``
    (bin ``2d + r``), and with ``index_ties`` AP@top_k into ``ap`` and hits@precision_k into ``hits``."""
    n = x_t.shape[1]
    n_bins = 2 * (bits + 1)
    k_max = max(top_k, precision_k)
    dist = np.empty(_BLOCK, np.uint16)
    rel = np.empty(_BLOCK, np.uint16)
    codes = np.empty(n if index_ties else _BLOCK, np.uint16)  # the query's row of 2d + r
    terms = np.empty(n if index_ties else 0, np.int64)
    h4 = np.zeros((4, n_bins), np.int64)
    base = np.zeros(bits + 1, np.int64)
    seen = np.zeros(bits + 1, np.int64)
    for j in range(q.shape[0]):
        h4[:] = 0
        for b0 in range(0, n, _BLOCK):
            b1 = min(n, b0 + _BLOCK)
            block = codes[b0:b1] if index_ties else codes[: b1 - b0]
            _block_codes(q[j], q_lab[j], x_t, lab_t, single, b0, b1, dist, rel, block)
            n4 = (b1 - b0) // 4 * 4
            for i in range(0, n4, 4):
                h4[0, block[i]] += 1
                h4[1, block[i + 1]] += 1
                h4[2, block[i + 2]] += 1
                h4[3, block[i + 3]] += 1
            for i in range(n4, b1 - b0):
                h4[0, block[i]] += 1
        row = hist[j]
        for b in range(n_bins):
            row[b] = h4[0, b] + h4[1, b] + h4[2, b] + h4[3, b]
        if not index_ties:
            continue
        # base[d] = items before distance d, plus relevant items before d in the high 32 bits; the
        # running count per distance is kept the same way, so rank and relevant rank add up in one int
        n_before = 0
        rel_before = 0
        v_max = n_bins - 1  # items beyond the bucket holding rank k_max cannot be in the top k_max
        for d in range(bits + 1):
            base[d] = n_before + (rel_before << 32)
            n_before += row[2 * d] + row[2 * d + 1]
            rel_before += row[2 * d + 1]
            if n_before >= k_max:
                v_max = min(v_max, 2 * d + 1)
        n_terms = _relevant_ranks(codes, v_max, base, seen, terms)
        ap_sum = 0.0
        n_rel_k = 0
        n_rel_p = 0
        for t in range(n_terms):
            rank = terms[t] & 0xFFFFFFFF
            inside = rank <= top_k
            ap_sum += inside * ((terms[t] >> 32) / rank)
            n_rel_k += inside
            n_rel_p += rank <= precision_k
        ap[j] = ap_sum / n_rel_k if n_rel_k > 0 else 0.0
        hits[j] = n_rel_p


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
) -> tuple[Tensor, Tensor, Tensor]:
    """``(hist (Q, m+1, 2) int64, ap (Q,) float64, hits (Q,) float64)`` for packed uint8 codes on CPU.

    Limits (checked by the caller): ``m <= 32766`` (``2d + r`` is a uint16) and ``N < 2**31``.

    ``top_k`` and ``precision_k`` are already clamped to ``[1, N]``; ``ap``/``hits`` are filled only
    with ``index_ties`` (zeros otherwise). ``workers`` threads each take chunks of queries.
    """
    q = _words(query_packed.numpy())
    q_lab = np.ascontiguousarray(_label_words(query_labels, single))
    x_t = np.ascontiguousarray(_words(database_packed.numpy()).T)  # (W, N): blocks of one word
    lab_t = np.ascontiguousarray(_label_words(database_labels, single).T)
    n_q = q.shape[0]
    hist = np.zeros((n_q, 2 * (bits + 1)), np.int64)
    ap = np.zeros(n_q)
    hits = np.zeros(n_q)

    def run(s: int) -> None:
        e = min(n_q, s + _CHUNK_QUERIES)
        _rank_queries(
            q[s:e], q_lab[s:e], x_t, lab_t, single, bits, top_k, precision_k, index_ties,
            hist[s:e], ap[s:e], hits[s:e],
        )  # fmt: skip

    starts = range(0, n_q, _CHUNK_QUERIES)
    workers = max(1, min(workers, len(starts)))
    if workers == 1:
        for s in starts:
            run(s)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))
    return torch.from_numpy(hist).view(n_q, bits + 1, 2), torch.from_numpy(ap), torch.from_numpy(hits)
