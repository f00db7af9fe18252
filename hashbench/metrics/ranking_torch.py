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
    graded: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(hist (Q, m+1, 2) int64, ap (Q,) float64, hits (Q,) float64, graded (Q, 3) float64, grade_hist
    (Q, C+1) int64)`` from ±1 float64 codes.

    ``top_k``/``precision_k`` are already clamped to ``[1, N]``; ``ap``/``hits`` are filled only with
    ``index_ties`` (zeros otherwise). With ``graded`` (multi-hot labels, ``index_ties``), ``graded`` holds
    the sum of grades (shared labels), DCG and WAP over the top ``top_k`` and ``grade_hist`` the number of
    database items of each grade; else both have 0 columns.
    """
    q_n, m = query_codes.shape
    n = database_codes.shape[0]
    device = query_codes.device
    hist = torch.empty(q_n, m + 1, 2, dtype=torch.int64, device=device)
    ap = torch.zeros(q_n, dtype=torch.float64, device=device)
    hits = torch.zeros(q_n, dtype=torch.float64, device=device)
    graded = graded and index_ties and not single
    gout = torch.zeros(q_n, 3 if graded else 0, dtype=torch.float64, device=device)
    c1 = database_labels.shape[1] + 1 if graded else 0
    ghist = torch.zeros(q_n, c1, dtype=torch.int64, device=device)
    index = torch.arange(n, device=device)
    k_max = max(top_k, precision_k)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for s in range(0, q_n, rows):
        e = min(q_n, s + rows)
        d = ((m - query_codes[s:e] @ database_codes.T) / 2).round_().long()
        if single:
            rel = query_labels[s:e, None] == database_labels[None, :]
        else:
            shared = query_labels[s:e].double() @ database_labels.double().T  # exact small integers
            rel = shared > 0
        bins = 2 * (m + 1)
        offset = torch.arange(e - s, device=device)[:, None] * bins
        counts = torch.bincount((2 * d + rel + offset).view(-1), minlength=(e - s) * bins)
        hist[s:e] = counts.view(-1, m + 1, 2)
        if index_ties:
            order = torch.topk(d * n + index, k_max, dim=1, largest=False, sorted=True).indices
            ap[s:e], hits[s:e] = _ap_and_hits(rel.gather(1, order), top_k, precision_k)
            if graded:
                gout[s:e] = _graded(shared.gather(1, order[:, :top_k]))
                grade_bins = shared.long() + torch.arange(e - s, device=device)[:, None] * c1
                ghist[s:e] = torch.bincount(grade_bins.view(-1), minlength=(e - s) * c1).view(-1, c1)
    return hist, ap, hits, gout, ghist


def _graded(grades: Tensor) -> Tensor:
    """``(Σ grades, DCG, WAP)`` per row of grades ``(B, K)`` in ranking order, as ``(B, 3)`` float64."""
    k = torch.arange(1, grades.shape[1] + 1, dtype=torch.float64, device=grades.device)
    rel = grades > 0
    n_rel = rel.sum(1)
    dcg = (torch.exp2(grades) - 1) @ (1.0 / torch.log2(1 + k))
    wap = torch.where(rel, torch.cumsum(grades, 1) / k, 0.0).sum(1) / n_rel.clamp(min=1)
    return torch.stack([grades.sum(1), dcg, wap], 1)


def _ap_and_hits(rel: Tensor, top_k: int, precision_k: int) -> tuple[Tensor, Tensor]:
    """AP@top_k and hits@precision_k of rows of relevance flags ``(B, >= max(k))`` in ranking order."""
    r = rel[:, :top_k]
    cum = torch.cumsum(r, 1, dtype=torch.float64)
    n_rel = cum[:, -1]
    ap_sum = (cum * r) @ (1.0 / torch.arange(1, top_k + 1, dtype=torch.float64, device=rel.device))
    ap = torch.where(n_rel > 0, ap_sum / n_rel.clamp(min=1), 0.0)
    return ap, rel[:, :precision_k].sum(1, dtype=torch.float64)
