"""The ranking pass in dense torch ops: the engine for devices other than the CPU (CUDA).

Chunks of queries against the whole database, with at most ``_CHUNK_ELEMENTS`` query–item pairs per
chunk: the Hamming distances from a float64 product of ±1 codes (``q·x = m − 2d``, exact for these small
integers and untouched by TF32), relevance from the labels, the distance/relevance histogram by
``bincount``, and the top K by ``topk`` on the unique key ``d·N + index`` (ties by database index).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rank_torch"]

_CHUNK_ELEMENTS = 1 << 24


def rank_torch(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    single: bool,
    top_k: int,
    precision_k: int,
    index_ties: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(hist (Q, m+1, 2) int64, ap (Q,) float64, hits (Q,) float64)`` from ±1 float64 codes.

    ``top_k``/``precision_k`` are already clamped to ``[1, N]``; ``ap``/``hits`` are filled only with
    ``index_ties`` (zeros otherwise).
    """
    q_n, m = query_codes.shape
    n = database_codes.shape[0]
    device = query_codes.device
    hist = torch.empty(q_n, m + 1, 2, dtype=torch.int64, device=device)
    ap = torch.zeros(q_n, dtype=torch.float64, device=device)
    hits = torch.zeros(q_n, dtype=torch.float64, device=device)
    index = torch.arange(n, device=device)
    k_max = max(top_k, precision_k)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for s in range(0, q_n, rows):
        e = min(q_n, s + rows)
        d = ((m - query_codes[s:e] @ database_codes.T) / 2).round_().long()
        if single:
            rel = query_labels[s:e, None] == database_labels[None, :]
        else:
            rel = (query_labels[s:e].float() @ database_labels.float().T) > 0
        bins = 2 * (m + 1)
        offset = torch.arange(e - s, device=device)[:, None] * bins
        counts = torch.bincount((2 * d + rel + offset).view(-1), minlength=(e - s) * bins)
        hist[s:e] = counts.view(-1, m + 1, 2)
        if index_ties:
            order = torch.topk(d * n + index, k_max, dim=1, largest=False, sorted=True).indices
            ap[s:e], hits[s:e] = _ap_and_hits(rel.gather(1, order), top_k, precision_k)
    return hist, ap, hits


def _ap_and_hits(rel: Tensor, top_k: int, precision_k: int) -> tuple[Tensor, Tensor]:
    """AP@top_k and hits@precision_k of rows of relevance flags ``(B, >= max(k))`` in ranking order."""
    r = rel[:, :top_k]
    cum = torch.cumsum(r, 1, dtype=torch.float64)
    n_rel = cum[:, -1]
    ap_sum = (cum * r) @ (1.0 / torch.arange(1, top_k + 1, dtype=torch.float64, device=rel.device))
    ap = torch.where(n_rel > 0, ap_sum / n_rel.clamp(min=1), 0.0)
    return ap, rel[:, :precision_k].sum(1, dtype=torch.float64)
